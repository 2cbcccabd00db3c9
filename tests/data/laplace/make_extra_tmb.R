# glmmTMB (nbinom2, theta estimated) fits of the extra reference cases in
# tests/data/r/ (random slopes, three nested levels, slopes with nested
# intercepts), for tests/test_laplace.py.  Run from the repository root:
#   Rscript tests/data/laplace/make_extra_tmb.R
suppressMessages({library(glmmTMB); library(jsonlite)})
random <- list(
  x01_slope_offset = "(area | slide) + offset(log(exposure))",
  x02_slope_unbalanced = "(area | slide)",
  x03_slope_no_intercept = "(0 + area | slide)",
  x04_three_levels = "(1 | experiment) + (1 | experiment:slide) + (1 | experiment:slide:field)",
  x05_nested_covariate = "(1 | experiment) + (1 | experiment:slide)",
  x06_slope_and_nested = "(area | experiment) + (1 | experiment:slide)")
out <- list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
            TMB = as.character(packageVersion("TMB")), cases = list())
for (case in names(random)) {
  dir <- file.path("tests/data/r", case)
  e <- fromJSON(file.path(dir, "expected.json"))
  d <- read.csv(file.path(dir, "data.csv"))
  f <- as.formula(paste(e$formula, "+", random[[case]]))
  m <- glmmTMB(f, d, family = nbinom2)
  sds <- unlist(lapply(VarCorr(m)$cond, function(v) attr(v, "stddev")))
  out$cases[[case]] <- list(
    formula_r = deparse1(f), params = unname(fixef(m)$cond),
    bse = unname(sqrt(diag(vcov(m, full = TRUE)))[seq_along(fixef(m)$cond)]),
    theta = sigma(m), loglik = as.numeric(logLik(m)), sds = unname(sds),
    sd_names = names(sds), converged = m$fit$convergence == 0,
    max_abs_grad = max(abs(m$sdr$gradient.fixed)))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/data/laplace/extra_tmb.json")
