# Profile-likelihood 95% intervals of theta and of the slide SD from glmmTMB
# (nbinom2, the objective of fit(method="laplace")), for tests/test_laplace.py.
# Run from the repository root: Rscript tests/data/laplace/make_profile_ci.R
suppressMessages({library(glmmTMB); library(jsonlite)})
cases <- c("v03_many_slides", "v04_within_covariate", "v05_offset")
out <- list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
            TMB = as.character(packageVersion("TMB")), level = 0.95, cases = list())
for (case in cases) {
  dir <- file.path("tests/data/reference", case)
  e <- fromJSON(file.path(dir, "expected.json"))
  d <- read.csv(file.path(dir, "data.csv"))
  off <- if (is.null(e$offset)) "" else paste("+ offset(", e$offset, ")")
  f <- as.formula(paste(e$formula, "+ (1 |", e$groups, ")", off))
  # default control: a tighter rel.tol ends in nlminb's "singular convergence"
  # and the profile then fails
  m <- glmmTMB(f, d, family = nbinom2)
  # glmmTMB's profile spline fails on some cases; keep what it gives
  prof <- function(parm) tryCatch(
    exp(unname(confint(m, method = "profile", parm = parm)[1, 1:2])),
    error = function(err) { message(case, " ", parm, ": ", conditionMessage(err)); NULL })
  out$cases[[case]] <- list(
    theta = sigma(m), sd = attr(VarCorr(m)$cond[[1]], "stddev")[[1]],
    theta_ci = prof("disp_"), sd_ci = prof("theta_"))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/data/laplace/profile_ci.json")
