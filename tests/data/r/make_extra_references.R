# Extra reference cases for glmmnb: simulated microscopy-like counts fitted
# with MASS::glm.nb (theta) and MASS::glmmPQL (defaults), written in the same
# layout as tests/data/reference/<case>/expected.json (see the README there;
# the glmer.nb / glmmTMB comparison blocks are not produced here).
#
# Usage (from the repository root):
#   Rscript tests/data/r/make_extra_references.R            # write x01..x06, x10
#   Rscript tests/data/r/make_extra_references.R x10        # write only x10
#   Rscript tests/data/r/make_extra_references.R --check    # also refit v05, v06,
#       v11 from tests/data/reference and report the largest relative
#       difference to their expected.json (a check of this script's pipeline)
#
# Output: tests/data/r/<case>/data.csv and tests/data/r/<case>/expected.json.
# The data are simulated with set.seed, rounded, written to data.csv and read
# back, so the fit sees exactly the numbers in data.csv.

suppressMessages({
  library(MASS)
  library(nlme)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f[1])) else "tests/data/r"
})
out_root <- script_dir
ref_root <- normalizePath(file.path(script_dir, "..", "reference"), mustWork = FALSE)

pkg_versions <- function() {
  p <- c("MASS", "nlme", "jsonlite")
  setNames(as.list(vapply(p, function(x) as.character(packageVersion(x)), "")), p)
}

# ---------------------------------------------------------------------------
# Fitting and JSON
# ---------------------------------------------------------------------------

# fixed:  fixed-effects formula as a string, without offset
# random: the random argument of glmmPQL (a formula)
# offset: NULL or a string such as "log(exposure)"
# levels: grouping factor names, outermost first (e.g. c("experiment", "slide"))
fit_case <- function(name, dat, fixed, random, levels, groups, re_formula = NULL,
                     vc_formula = NULL, offset = NULL) {
  fixed_full <- if (is.null(offset)) fixed else paste0(fixed, " + offset(", offset, ")")
  fml <- as.formula(fixed_full)

  nb <- glm.nb(fml, data = dat)
  theta <- nb$theta
  nb_sum <- summary(nb)$coefficients

  n_iter <- 0L
  t0 <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(
    glmmPQL(fml, random = random, family = negative.binomial(theta = theta),
            data = dat, verbose = TRUE),
    message = function(m) {
      if (grepl("^iteration [0-9]+", conditionMessage(m))) n_iter <<- n_iter + 1L
      invokeRestart("muffleMessage")
    })
  elapsed <- proc.time()[["elapsed"]] - t0

  tt <- summary(fit)$tTable
  sig <- fit$sigma
  # random-effects covariance per level, as variances; innermost level first
  # (as in the shared references, e.g. v11_nested: slide, then experiment)
  pd <- pdMatrix(fit$modelStruct$reStruct)[rev(levels)]
  cov_re <- lapply(pd, function(m) unname(m * sig^2))
  cov_re_names <- lapply(pd, function(m) colnames(m))
  ngrps <- fit$dims$ngrps[names(pd)]
  n_groups <- setNames(as.list(as.integer(ngrps)), names(pd))

  ranef_out <- NULL
  if (length(levels) == 1L) {
    re <- ranef(fit)
    ranef_out <- list(groups = rownames(re), values = unname(as.matrix(re)))
  }

  vc <- unname(vcov(fit))
  list(
    name = name,
    n_obs = nrow(dat),
    formula = fixed,
    groups = groups,
    re_formula = re_formula,
    vc_formula = vc_formula,
    offset = offset,
    rows = NULL,
    theta_source = "glm.nb",
    glm_nb = list(
      theta = theta,
      se_theta = nb$SE.theta,
      params = unname(nb_sum[, "Estimate"]),
      bse = unname(nb_sum[, "Std. Error"]),
      loglik = as.numeric(logLik(nb))
    ),
    theta = theta,
    pql = list(
      param_names_r = rownames(tt),
      params = unname(tt[, "Value"]),
      bse = unname(tt[, "Std.Error"]),
      df = as.integer(unname(tt[, "DF"])),
      tvalues = unname(tt[, "t-value"]),
      pvalues = unname(tt[, "p-value"]),
      cov_params = vc,
      cov_re = cov_re,
      cov_re_names = cov_re_names,
      resid_sd = sig,
      n_iter = n_iter,
      n_groups = n_groups,
      ranef = ranef_out,
      fitted_head = unname(fitted(fit)[1:10]),
      elapsed_s = elapsed
    ),
    r_version = R.version.string,
    packages = pkg_versions()
  )
}

to_json <- function(x) {
  toJSON(x, auto_unbox = TRUE, pretty = TRUE, digits = NA, null = "null",
         na = "null", matrix = "rowmajor")
}

write_case <- function(name, dat, ...) {
  dir <- file.path(out_root, name)
  dir.create(dir, showWarnings = FALSE, recursive = TRUE)
  csv <- file.path(dir, "data.csv")
  write.csv(dat, csv, row.names = FALSE)
  dat2 <- read.csv(csv, stringsAsFactors = TRUE)   # fit exactly what is on disk
  res <- fit_case(name, dat2, ...)
  writeLines(to_json(res), file.path(dir, "expected.json"))
  p <- res$pql
  cat(sprintf("%-24s n=%d theta=%.4f n_iter=%d n_groups=%s df=%s\n", name,
              res$n_obs, res$theta, p$n_iter,
              paste(names(p$n_groups), unlist(p$n_groups), sep = ":", collapse = ","),
              paste(p$df, collapse = ",")))
  invisible(res)
}

# ---------------------------------------------------------------------------
# Simulation helpers
# ---------------------------------------------------------------------------

phases <- c("G1", "S", "G2")
r4 <- function(x) round(x, 4)

# ---------------------------------------------------------------------------
# x01: random intercept + slope of area, with an exposure offset
# ---------------------------------------------------------------------------
make_x01 <- function() {
  set.seed(20240101)
  n_slides <- 14
  sizes <- sample(20:40, n_slides, replace = TRUE)
  slide_ids <- sprintf("s%03d", seq_len(n_slides))
  trt <- rep(c("control", "target"), length.out = n_slides)
  S <- matrix(c(0.04, 0.01, 0.01, 0.03), 2)       # (intercept, area) covariance
  U <- MASS::mvrnorm(n_slides, c(0, 0), S)
  rows <- lapply(seq_len(n_slides), function(i) {
    n <- sizes[i]
    area <- r4(rnorm(n))
    exposure <- r4(runif(n, 0.4, 1.6))
    eta <- 1.1 + 0.25 * (trt[i] == "target") + U[i, 1] + (0.3 + U[i, 2]) * area +
      log(exposure)
    data.frame(slide = slide_ids[i], treatment = trt[i], area = area,
               phase = sample(phases, n, replace = TRUE), exposure = exposure,
               counts = rnbinom(n, size = 3, mu = exp(eta)))
  })
  dat <- do.call(rbind, rows)
  write_case("x01_slope_offset", dat,
             fixed = "counts ~ treatment + area", random = ~ area | slide,
             levels = "slide", groups = "slide", re_formula = "~area",
             offset = "log(exposure)")
}

# ---------------------------------------------------------------------------
# x02: random slope, strongly unbalanced slide sizes (5 to 80 cells)
# ---------------------------------------------------------------------------
make_x02 <- function() {
  set.seed(20240102)
  sizes <- c(5, 80, 6, 60, 5, 12, 80, 7, 25, 5, 45, 70, 8, 5, 35, 80)
  n_slides <- length(sizes)
  slide_ids <- sprintf("s%03d", seq_len(n_slides))
  trt <- rep(c("control", "target"), length.out = n_slides)
  S <- matrix(c(0.05, -0.01, -0.01, 0.04), 2)
  U <- MASS::mvrnorm(n_slides, c(0, 0), S)
  rows <- lapply(seq_len(n_slides), function(i) {
    n <- sizes[i]
    area <- r4(rnorm(n))
    eta <- 1.3 + 0.2 * (trt[i] == "target") + U[i, 1] + (0.35 + U[i, 2]) * area
    data.frame(slide = slide_ids[i], treatment = trt[i], area = area,
               phase = sample(phases, n, replace = TRUE),
               counts = rnbinom(n, size = 2.5, mu = exp(eta)))
  })
  dat <- do.call(rbind, rows)
  write_case("x02_slope_unbalanced", dat,
             fixed = "counts ~ treatment + area", random = ~ area | slide,
             levels = "slide", groups = "slide", re_formula = "~area")
}

# ---------------------------------------------------------------------------
# x03: random slope of area without a random intercept
# ---------------------------------------------------------------------------
make_x03 <- function() {
  set.seed(20240103)
  n_slides <- 15
  sizes <- sample(22:34, n_slides, replace = TRUE)
  slide_ids <- sprintf("s%03d", seq_len(n_slides))
  trt <- rep(c("control", "target"), length.out = n_slides)
  u <- rnorm(n_slides, 0, 0.2)
  rows <- lapply(seq_len(n_slides), function(i) {
    n <- sizes[i]
    area <- r4(rnorm(n))
    eta <- 1.2 + 0.3 * (trt[i] == "target") + (0.3 + u[i]) * area
    data.frame(slide = slide_ids[i], treatment = trt[i], area = area,
               phase = sample(phases, n, replace = TRUE),
               counts = rnbinom(n, size = 3, mu = exp(eta)))
  })
  dat <- do.call(rbind, rows)
  write_case("x03_slope_no_intercept", dat,
             fixed = "counts ~ treatment + area", random = ~ 0 + area | slide,
             levels = "slide", groups = "slide", re_formula = "0 + area")
}

# ---------------------------------------------------------------------------
# x04: three nested levels experiment / slide / field. Slide labels are unique;
# field labels ("f1".."f3") repeat in every slide, so nesting comes from the
# parents. Treatment varies within experiments, is constant within slides.
# ---------------------------------------------------------------------------
make_x04 <- function() {
  set.seed(20240104)
  n_exp <- 4; slides_per_exp <- 4; fields_per_slide <- 3
  u_exp <- rnorm(n_exp, 0, 0.3)
  rows <- list(); k <- 0
  for (e in seq_len(n_exp)) {
    trt <- sample(rep(c("control", "target"), slides_per_exp / 2))
    for (s in seq_len(slides_per_exp)) {
      slide <- sprintf("s%03d", (e - 1) * slides_per_exp + s)
      u_slide <- rnorm(1, 0, 0.2)
      for (f in seq_len(fields_per_slide)) {
        n <- sample(8:16, 1)
        u_field <- rnorm(1, 0, 0.25)
        area <- r4(rnorm(n))
        eta <- 1.2 + 0.3 * (trt[s] == "target") + 0.25 * area +
          u_exp[e] + u_slide + u_field
        k <- k + 1
        rows[[k]] <- data.frame(
          experiment = sprintf("day%d", e), slide = slide, field = sprintf("f%d", f),
          treatment = trt[s], area = area, phase = sample(phases, n, replace = TRUE),
          counts = rnbinom(n, size = 3, mu = exp(eta)))
      }
    }
  }
  dat <- do.call(rbind, rows)
  write_case("x04_three_levels", dat,
             fixed = "counts ~ treatment + area",
             random = ~ 1 | experiment / slide / field,
             levels = c("experiment", "slide", "field"), groups = "experiment",
             vc_formula = list(slide = "0 + C(slide)", field = "0 + C(field)"))
}

# ---------------------------------------------------------------------------
# x05: experiment / slide with a slide-level numeric dose (varies within
# experiments, constant within slides) and the cell-level covariate area.
# ---------------------------------------------------------------------------
make_x05 <- function() {
  set.seed(20240105)
  n_exp <- 5
  doses <- c(0, 0.5, 1, 2)
  u_exp <- rnorm(n_exp, 0, 0.3)
  rows <- list(); k <- 0
  for (e in seq_len(n_exp)) {
    d <- sample(doses)
    for (s in seq_along(d)) {
      k <- k + 1
      n <- sample(15:25, 1)
      u_slide <- rnorm(1, 0, 0.2)
      area <- r4(rnorm(n))
      eta <- 1.0 + 0.35 * d[s] + 0.2 * area + u_exp[e] + u_slide
      rows[[k]] <- data.frame(
        experiment = sprintf("day%d", e), slide = sprintf("s%03d", k), dose = d[s],
        area = area, phase = sample(phases, n, replace = TRUE),
        counts = rnbinom(n, size = 3, mu = exp(eta)))
    }
  }
  dat <- do.call(rbind, rows)
  write_case("x05_nested_covariate", dat,
             fixed = "counts ~ dose + area", random = ~ 1 | experiment / slide,
             levels = c("experiment", "slide"), groups = "experiment",
             vc_formula = list(slide = "0 + C(slide)"))
}

# ---------------------------------------------------------------------------
# x06: a random intercept and slope of area per experiment, and a random
# intercept per slide nested in it: random = list(experiment = ~ area,
# slide = ~ 1); in glmmnb groups = "experiment", re_formula = "~area",
# vc_formula = {"slide": "0 + C(slide)"}.
# ---------------------------------------------------------------------------
make_x06 <- function() {
  set.seed(20240106)
  n_exp <- 8
  per_exp <- 3
  S <- matrix(c(0.05, 0.01, 0.01, 0.04), 2)
  U <- MASS::mvrnorm(n_exp, c(0, 0), S)
  rows <- list()
  k <- 0
  for (e in seq_len(n_exp)) {
    for (s in seq_len(per_exp)) {
      k <- k + 1
      n <- sample(15:30, 1)
      trt <- if (k %% 2) "control" else "target"
      area <- r4(rnorm(n))
      eta <- 1.2 + 0.3 * (trt == "target") + U[e, 1] + rnorm(1, sd = 0.2) +
        (0.3 + U[e, 2]) * area
      rows[[k]] <- data.frame(
        experiment = sprintf("day%d", e), slide = sprintf("s%03d", k), treatment = trt,
        area = area, counts = rnbinom(n, size = 3, mu = exp(eta)))
    }
  }
  dat <- do.call(rbind, rows)
  write_case("x06_slope_and_nested", dat,
             fixed = "counts ~ treatment + area",
             random = list(experiment = ~ area, slide = ~ 1),
             levels = c("experiment", "slide"), groups = "experiment",
             re_formula = "~area", vc_formula = list(slide = "0 + C(slide)"))
}

# ---------------------------------------------------------------------------
# x10: three random coefficients per slide (intercept, area, depth), correlated:
# the only case whose per-group systems are 3 x 3, solved by Cholesky rather
# than by the closed forms used for one or two coefficients
# ---------------------------------------------------------------------------
make_x10 <- function() {
  set.seed(20240110)
  n_slides <- 24
  sizes <- sample(25:40, n_slides, replace = TRUE)
  slide_ids <- sprintf("s%03d", seq_len(n_slides))
  trt <- rep(c("control", "target"), length.out = n_slides)
  S <- matrix(c(0.09, 0.02, -0.015,
                0.02, 0.04, 0.01,
                -0.015, 0.01, 0.05), 3)
  U <- MASS::mvrnorm(n_slides, c(0, 0, 0), S)
  rows <- lapply(seq_len(n_slides), function(i) {
    n <- sizes[i]
    area <- r4(rnorm(n))
    depth <- r4(runif(n, -1, 1))
    eta <- 1.4 + 0.3 * (trt[i] == "target") + U[i, 1] + (0.3 + U[i, 2]) * area +
      (-0.2 + U[i, 3]) * depth
    data.frame(slide = slide_ids[i], treatment = trt[i], area = area, depth = depth,
               counts = rnbinom(n, size = 4, mu = exp(eta)))
  })
  dat <- do.call(rbind, rows)
  write_case("x10_three_coefficients", dat,
             fixed = "counts ~ treatment + area + depth", random = ~ area + depth | slide,
             levels = "slide", groups = "slide", re_formula = "~area + depth")
  write_final_lme("x10_three_coefficients", counts ~ treatment + area + depth,
                  ~ area + depth | slide)
}

# The final inner fit of glmmPQL on its own working data (zz, invwt), written
# to working.csv and refitted from the numbers read back, with its ML
# log-likelihood: a check of the inner LMM alone, on R's exact input.
write_final_lme <- function(name, fml, random) {
  dir <- file.path(out_root, name)
  dat <- read.csv(file.path(dir, "data.csv"), stringsAsFactors = TRUE)
  theta <- glm.nb(fml, data = dat)$theta
  pql <- glmmPQL(fml, random = random, family = negative.binomial(theta = theta),
                 data = dat, verbose = FALSE)
  csv <- file.path(dir, "working.csv")
  write.csv(data.frame(zz = pql$data$zz, invwt = pql$data$invwt), csv, row.names = FALSE)
  work <- cbind(dat, read.csv(csv))
  fit <- lme(update(fml, zz ~ .), random = random, data = work,
             weights = varFixed(~invwt), method = "ML")
  pd <- pdMatrix(fit$modelStruct$reStruct)[[1]]
  writeLines(to_json(list(loglik = as.numeric(logLik(fit)), params = unname(fixef(fit)),
                          cov_re = unname(pd * fit$sigma^2), sigma = fit$sigma,
                          r_version = R.version.string, packages = pkg_versions())),
             file.path(dir, "working.json"))
}

# ---------------------------------------------------------------------------
# Optional pipeline check against shared references
# ---------------------------------------------------------------------------
check_shared <- function() {
  max_rel <- function(a, b) {
    a <- unlist(a); b <- unlist(b)
    if (length(a) != length(b)) return(Inf)
    max(abs(a - b) / pmax(abs(b), 1e-8))
  }
  specs <- list(
    v05_offset = list(random = ~ 1 | slide, levels = "slide"),
    v06_random_slope = list(random = ~ area | slide, levels = "slide"),
    v11_nested = list(random = ~ 1 | experiment / slide, levels = c("experiment", "slide")))
  for (nm in names(specs)) {
    exp <- fromJSON(file.path(ref_root, nm, "expected.json"), simplifyVector = FALSE)
    dat <- read.csv(file.path(ref_root, nm, "data.csv"), stringsAsFactors = TRUE)
    res <- fit_case(nm, dat, fixed = exp$formula, random = specs[[nm]]$random,
                    levels = specs[[nm]]$levels, groups = exp$groups,
                    offset = if (is.null(exp$offset)) NULL else exp$offset)
    res <- fromJSON(to_json(res), simplifyVector = FALSE)
    fields <- c("params", "bse", "df", "tvalues", "pvalues", "cov_params", "cov_re",
                "resid_sd", "n_iter", "n_groups", "fitted_head")
    d <- vapply(fields, function(f) max_rel(res$pql[[f]], exp$pql[[f]]), 0)
    cat(sprintf("check %-18s theta rel %.1e; %s\n", nm,
                abs(res$theta - exp$theta) / exp$theta,
                paste(sprintf("%s %.1e", fields, d), collapse = "; ")))
  }
}

makers <- list(x01 = make_x01, x02 = make_x02, x03 = make_x03, x04 = make_x04,
               x05 = make_x05, x06 = make_x06, x10 = make_x10)
chosen <- intersect(args, names(makers))   # e.g. "x10" writes only x10
for (nm in if (length(chosen)) chosen else names(makers)) makers[[nm]]()
if ("--check" %in% args) check_shared()
