# R's glmmPQL internals for the unit tests of glmmnb.core.pql (tests/test_pql.py):
# the final working weights (1 / fit$data$invwt: the weights of the last lme
# fit), the conditional linear predictor (fitted(fit), offset included), the
# starting GLM at the given theta, the fixed effects, sigma and the number of
# lme fits.
#
# Usage (from the repository root):
#   Rscript tests/data/r/make_pql_unit_references.R
# Output: tests/data/r/pql_unit.json

suppressMessages({
  library(MASS)
  library(nlme)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f[1])) else "tests/data/r"
})

pql_case <- function(fixed, dat, theta) {
  n_iter <- 0L
  fit <- withCallingHandlers(
    glmmPQL(fixed, random = ~ 1 | g, family = negative.binomial(theta = theta),
            data = dat, verbose = TRUE),
    message = function(m) {
      if (grepl("^iteration [0-9]+", conditionMessage(m))) n_iter <<- n_iter + 1L
      invokeRestart("muffleMessage")
    })
  glm0 <- glm(fixed, family = negative.binomial(theta = theta), data = dat)
  list(theta = theta, params = unname(fixef(fit)), sigma = fit$sigma, n_iter = n_iter,
       eta = unname(fitted(fit)), weights = 1 / fit$data$invwt,
       glm_params = unname(coef(glm0)))
}

tiny <- data.frame(
  y = c(2, 4, 3, 5, 1, 6, 8, 7, 9, 5, 3, 2, 4, 1, 2, 7, 5, 9, 6, 8, 4, 3, 5, 6, 2, 1, 0, 2, 3, 1),
  g = factor(rep(0:5, each = 5)))
v05 <- read.csv(file.path(script_dir, "..", "reference", "v05_offset", "data.csv"),
                stringsAsFactors = TRUE)
v05$g <- v05$slide

out <- list(
  tiny = c(list(y = tiny$y, groups = as.integer(tiny$g) - 1L),
           pql_case(y ~ 1, tiny, 50)),
  offset_fixed_theta = pql_case(counts ~ treatment + offset(log(exposure)), v05, 2),
  r_version = R.version.string,
  packages = list(MASS = as.character(packageVersion("MASS")),
                  nlme = as.character(packageVersion("nlme"))))
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, digits = NA),
           file.path(script_dir, "pql_unit.json"))
cat("tiny n_iter", out$tiny$n_iter, "; offset_fixed_theta n_iter", out$offset_fixed_theta$n_iter, "\n")
