# MASS::theta.ml for known means (tests/test_theta.py): the seed's counts at
# their glm.nb means, and v07's low counts at constant means, with R's
# tolerance tightened so that R stops at the optimum.
#
# Usage (from the repository root):
#   Rscript tests/data/r/make_theta_references.R
# Output: tests/data/r/theta_unit.json

suppressMessages({
  library(MASS)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f[1])) else "tests/data/r"
})
ref <- file.path(script_dir, "..", "reference")

case <- function(y, mu) {
  th <- theta.ml(y, mu, limit = 200, eps = 1e-12)
  list(y = y, mu = unname(mu), theta = as.numeric(th), se = attr(th, "SE"))
}

seed <- read.csv(file.path(ref, "v01_seed", "data.csv"), stringsAsFactors = TRUE)
v07 <- read.csv(file.path(ref, "v07_low_counts_unbalanced", "data.csv"), stringsAsFactors = TRUE)
out <- list(
  seed = case(seed$counts, fitted(glm.nb(counts ~ RNAi, data = seed))),
  v07_constant_mean = case(v07$counts, rep(mean(v07$counts), nrow(v07))),
  r_version = R.version.string,
  packages = list(MASS = as.character(packageVersion("MASS"))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA),
           file.path(script_dir, "theta_unit.json"))
cat("seed theta", out$seed$theta, "se", out$seed$se, "; v07", out$v07_constant_mean$theta, "\n")
