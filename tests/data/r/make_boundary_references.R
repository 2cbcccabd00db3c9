# Reference cases where the random-intercept SD is far larger than the PQL
# residual SD (issue 9, item 1): glmmPQL's inner lme finds a ratio of SDs
# near or beyond 100, where glmmnb used to cap its search.  Two regimes:
#
#   x07_tiny_theta  : theta fixed at 5e-4, slide SD 2 (theta_source "fixed")
#   x08_large_counts: counts around 36,000, slide SD 2, theta by glm.nb
#                     (~0.77: the slide effect inflates the overdispersion of
#                     the fixed-effects GLM, and the PQL residual SD is ~0.01)
#
# and one at the other boundary (issue 9, item 4), a singular fit, written to
# tests/data/r_singular/ (not a case to match number by number: at this
# boundary nlme stops at a point whose inner ML deviance is ~0.01 above the
# optimum, and glmmnb goes on to it):
#
#   x09_slope_singular: a random slope of area with no slide-to-slide
#                     variation; the relative Cholesky diagonal of glmmPQL's
#                     slide covariance is 3e-5: singular by lme4's rule.
#
# Same layout as make_extra_references.R (see tests/data/reference/README.md).
#
# Usage (from the repository root):
#   Rscript tests/data/r/make_boundary_references.R
# Output: tests/data/r/<case>/ (x09: tests/data/r_singular/<case>/) data.csv and
# expected.json, fitted from the
# numbers read back from data.csv.

suppressMessages({
  library(MASS)
  library(nlme)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f[1])) else "tests/data/r"
})

pkg_versions <- function() {
  p <- c("MASS", "nlme", "jsonlite")
  setNames(as.list(vapply(p, function(x) as.character(packageVersion(x)), "")), p)
}

# theta = NULL estimates it with glm.nb, a number fixes it.
fit_case <- function(name, dat, fixed, theta = NULL, random = ~ 1 | slide,
                     re_formula = NULL) {
  fml <- as.formula(fixed)
  nb <- glm.nb(fml, data = dat)
  nb_sum <- summary(nb)$coefficients
  theta_source <- if (is.null(theta)) "glm.nb" else "fixed"
  if (is.null(theta)) theta <- nb$theta

  n_iter <- 0L
  fit <- withCallingHandlers(
    glmmPQL(fml, random = random, family = negative.binomial(theta = theta),
            data = dat, verbose = TRUE),
    message = function(m) {
      if (grepl("^iteration [0-9]+", conditionMessage(m))) n_iter <<- n_iter + 1L
      invokeRestart("muffleMessage")
    })
  tt <- summary(fit)$tTable
  sig <- fit$sigma
  pd <- pdMatrix(fit$modelStruct$reStruct)["slide"]
  re <- ranef(fit)
  list(
    name = name, n_obs = nrow(dat), formula = fixed, groups = "slide",
    re_formula = re_formula, vc_formula = NULL, offset = NULL, rows = NULL,
    theta_source = theta_source,
    glm_nb = list(theta = nb$theta, se_theta = nb$SE.theta,
                  params = unname(nb_sum[, "Estimate"]),
                  bse = unname(nb_sum[, "Std. Error"]),
                  loglik = as.numeric(logLik(nb))),
    theta = theta,
    pql = list(
      param_names_r = rownames(tt),
      params = unname(tt[, "Value"]), bse = unname(tt[, "Std.Error"]),
      df = as.integer(unname(tt[, "DF"])), tvalues = unname(tt[, "t-value"]),
      pvalues = unname(tt[, "p-value"]), cov_params = unname(vcov(fit)),
      cov_re = lapply(pd, function(m) unname(m * sig^2)),
      cov_re_names = lapply(pd, function(m) colnames(m)),
      resid_sd = sig, n_iter = n_iter,
      n_groups = list(slide = as.integer(fit$dims$ngrps[["slide"]])),
      # the ratio glmmnb's optimiser has to reach (sd of slides / residual sd)
      sd_ratio = sqrt(pd$slide[1, 1]),
      # lme4's isSingular rule on glmmPQL's covariance: the diagonal of the
      # relative Cholesky factor
      rel_chol_diag = unname(diag(t(chol(pd$slide)))),
      ranef = list(groups = rownames(re), values = unname(as.matrix(re))),
      fitted_head = unname(fitted(fit)[1:10])),
    r_version = R.version.string, packages = pkg_versions())
}

write_case <- function(name, dat, ..., root = script_dir) {
  dir <- file.path(root, name)
  dir.create(dir, showWarnings = FALSE, recursive = TRUE)
  csv <- file.path(dir, "data.csv")
  write.csv(dat, csv, row.names = FALSE)
  dat2 <- read.csv(csv, stringsAsFactors = TRUE)
  res <- fit_case(name, dat2, ...)
  writeLines(toJSON(res, auto_unbox = TRUE, pretty = TRUE, digits = NA, null = "null",
                    na = "null", matrix = "rowmajor"), file.path(dir, "expected.json"))
  cat(sprintf("%-18s n=%d theta=%.4g n_iter=%d sd ratio=%.1f resid sd=%.4g\n", name,
              res$n_obs, res$theta, res$pql$n_iter, res$pql$sd_ratio, res$pql$resid_sd))
}

simulate <- function(seed, n_slides, cells, intercept, slide_sd, size, slope = 0) {
  set.seed(seed)
  slide <- rep(sprintf("s%02d", seq_len(n_slides)), each = cells)
  trt <- rep(rep(c("control", "target"), length.out = n_slides), each = cells)
  u <- rep(rnorm(n_slides, 0, slide_sd), each = cells)
  area <- round(rnorm(length(u)), 4)
  mu <- exp(intercept + 0.3 * (trt == "target") + u + slope * area)
  data.frame(slide = slide, treatment = trt, area = area,
             counts = rnbinom(length(mu), size = size, mu = mu))
}

write_case("x07_tiny_theta",
           simulate(20240107, n_slides = 10, cells = 20, intercept = 3, slide_sd = 2,
                    size = 5),
           fixed = "counts ~ treatment", theta = 5e-4)
write_case("x08_large_counts",
           simulate(20240108, n_slides = 10, cells = 20, intercept = log(36000),
                    slide_sd = 2, size = 20000),
           fixed = "counts ~ treatment")
write_case("x09_slope_singular",
           simulate(20240110, n_slides = 10, cells = 20, intercept = 1.2, slide_sd = 0.4,
                    size = 3, slope = 0.3),
           fixed = "counts ~ treatment + area", random = ~ area | slide, re_formula = "~area",
           root = file.path(script_dir, "..", "r_singular"))
