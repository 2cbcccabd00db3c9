# Predicted random effects at every level of the nested reference cases, which
# expected.json stores only for single-level fits (its `pql.ranef` field).
# Each case is refitted exactly as its expected.json was made (glm.nb theta,
# glmmPQL defaults); the fixed effects are written too, so a test can check
# that this refit is the fit expected.json describes.
#
# Usage (from the repository root):
#   Rscript tests/data/r/make_nested_ranef.R
#
# Output: tests/data/r_nested_ranef/<case>.json with
#   params        the refit's fixed effects (as expected.json's pql.params)
#   ranef         {level: {groups: [...], values: [[...], ...]}}, outermost
#                 level first; groups are nlme's labels ("day1/s001"), values
#                 one row per group, columns as in `columns`
#   columns       {level: column names}

suppressMessages({
  library(MASS)
  library(nlme)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f[1])) else "tests/data/r"
})
ref_root <- normalizePath(file.path(script_dir, "..", "reference"))

cases <- list(
  v11_nested = list(dir = file.path(ref_root, "v11_nested"),
                    random = ~ 1 | experiment / slide),
  x04_three_levels = list(dir = file.path(script_dir, "x04_three_levels"),
                          random = ~ 1 | experiment / slide / field),
  x05_nested_covariate = list(dir = file.path(script_dir, "x05_nested_covariate"),
                              random = ~ 1 | experiment / slide),
  x06_slope_and_nested = list(dir = file.path(script_dir, "x06_slope_and_nested"),
                              random = list(experiment = ~ area, slide = ~ 1)))

for (name in names(cases)) {
  spec <- cases[[name]]
  exp <- fromJSON(file.path(spec$dir, "expected.json"), simplifyVector = FALSE)
  dat <- read.csv(file.path(spec$dir, "data.csv"), stringsAsFactors = TRUE)
  fixed <- if (is.null(exp$offset)) exp$formula else
    paste0(exp$formula, " + offset(", exp$offset, ")")
  fml <- as.formula(fixed)
  theta <- glm.nb(fml, data = dat)$theta
  fit <- suppressMessages(glmmPQL(fml, random = spec$random,
                                  family = negative.binomial(theta = theta),
                                  data = dat, verbose = FALSE))
  re <- ranef(fit)
  out <- list(
    name = name,
    theta = theta,
    params = unname(fixef(fit)),
    ranef = lapply(re, function(d) list(groups = rownames(d),
                                        values = unname(as.matrix(d)))),
    columns = lapply(re, colnames),
    r_version = R.version.string,
    packages = list(MASS = as.character(packageVersion("MASS")),
                    nlme = as.character(packageVersion("nlme"))))
  writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, digits = NA,
                    matrix = "rowmajor"),
             file.path(script_dir, "..", "r_nested_ranef", paste0(name, ".json")))
  cat(sprintf("%-22s levels %s; max |params - expected| %.1e\n", name,
              paste(names(re), collapse = ","),
              max(abs(unname(fixef(fit)) - unlist(exp$pql$params)))))
}
