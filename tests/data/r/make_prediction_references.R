# Reference numbers for glmmnb's predictions, marginal means, conditional
# variances and residuals, computed by hand in R from glmmPQL fits.
#
# Usage (from the repository root):
#   Rscript tests/data/r/make_prediction_references.R
#
# Output: tests/data/r/prediction/<case>/data.csv and expected.json.
#
# What "by hand" means: every interval is built from R's own fit: vcov(fit)
# (nlme's ML covariance), inflated by N / (N - p) as summary.lme does
# (adjustSigma; glmmnb's cov_params() is that matrix, and emmeans inflates the
# same way for ML lme fits, its sigmaAdjust = TRUE), t quantiles on the
# smallest df of the parameters a row involves (emmeans' "containment" df:
# the tTable's DF, the intercept's replaced by the number of outermost groups
# - 1), on the link scale, then exp.  Both the inflated and the plain vcov
# standard errors are stored: an R user who takes vcov(fit) directly gets the
# plain ones.  Where emmeans is installed, its own emmeans() and pairs()
# results are stored beside the by-hand ones (field "emmeans").
#
# Conditional predictions (R's predict(fit, level = 1)) get their standard
# error from Henderson's mixed-model equations built from the last lme fit's
# data (zz, invwt), getVarCov(fit) and fit$sigma: the prediction error
# variance of x'beta + z'b_g is [x z] C^-1 [x z]'.  Its fixed-effects block
# equals vcov(fit); the inflated version replaces that block's share,
# c' V c with c = x - B_g' z, by c' V N / (N - p) c.

suppressMessages({
  library(MASS)
  library(nlme)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f[1])) else "tests/data/r"
})
out_root <- file.path(script_dir, "prediction")
seed_csv <- normalizePath(file.path(script_dir, "..", "..", "..", "glmmnb", "datasets",
                                    "microscopy", "microscopy.csv"))

have_emmeans <- requireNamespace("emmeans", quietly = TRUE)
versions <- list(R = R.version.string, MASS = as.character(packageVersion("MASS")),
                 nlme = as.character(packageVersion("nlme")),
                 jsonlite = as.character(packageVersion("jsonlite")),
                 emmeans = if (have_emmeans) as.character(packageVersion("emmeans")) else NA)

# emmeans' own marginal means and revpairwise ratios (response scale, no adjustment)
emmeans_block <- function(fit, spec, dat) {
  if (!have_emmeans) return(NA)
  e <- emmeans::emmeans(fit, spec, data = dat, type = "response")
  m <- as.data.frame(summary(e))
  r <- as.data.frame(summary(pairs(e, reverse = TRUE), infer = TRUE, adjust = "none"))
  list(means = list(mean = m$response, mean_se = m$SE, df = m$df,
                    mean_ci_lower = m$lower.CL, mean_ci_upper = m$upper.CL),
       ratios = list(contrast = as.character(r$contrast), ratio = r$ratio, df = r$df,
                     ci_lower = r$lower.CL, ci_upper = r$upper.CL, t = r$t.ratio,
                     p = r$p.value))
}

fit_pql <- function(fixed, random, dat) {
  theta <- glm.nb(fixed, data = dat)$theta
  fit <- glmmPQL(fixed, random = random, family = negative.binomial(theta = theta),
                 data = dat, verbose = FALSE)
  list(fit = fit, theta = theta)
}

# t interval of each row of L on the link scale, with R's vcov (plain and inflated)
contrasts <- function(fit, L, alpha = 0.05) {
  V <- vcov(fit)
  N <- nrow(fit$data); p <- ncol(V)
  Vadj <- V * N / (N - p)
  ddf <- summary(fit)$tTable[, "DF"]
  # emmeans' containment df for lme fits: nlme's df, except that the intercept
  # counts with the outermost groups (groups - 1), not the residual df
  if (names(ddf)[1] == "(Intercept)") ddf[1] <- nlevels(fit$groups[[1]]) - 1
  est <- drop(L %*% fixef(fit))
  se_adj <- sqrt(rowSums((L %*% Vadj) * L))
  se_plain <- sqrt(rowSums((L %*% V) * L))
  df <- apply(L, 1, function(r) min(ddf[abs(r) > 1e-12]))
  q <- qt(1 - alpha / 2, df)
  list(estimate = est, se = se_adj, se_vcov = se_plain, df = df,
       lower = est - q * se_adj, upper = est + q * se_adj)
}

mean_scale <- function(ct) {
  list(mean = exp(ct$estimate), mean_se = exp(ct$estimate) * ct$se,
       mean_ci_lower = exp(ct$lower), mean_ci_upper = exp(ct$upper),
       df = ct$df, se_link = ct$se, se_link_vcov = ct$se_vcov)
}

# Henderson's equations of the last working LMM.  blocks: one list(Z, group, G)
# per level, outermost first; the predicted quantity involves the first only.
henderson <- function(fit, X, blocks) {
  w <- 1 / fit$data$invwt
  s2 <- fit$sigma^2
  Zs <- lapply(blocks, function(b) {
    lev <- levels(factor(b$group))
    do.call(cbind, lapply(lev, function(g) b$Z * (b$group == g)))
  })
  Z <- do.call(cbind, Zs)
  Ginv <- as.matrix(Matrix::bdiag(lapply(blocks, function(b)
    kronecker(diag(nlevels(factor(b$group))), solve(b$G)))))
  WX <- X * w; WZ <- Z * w
  C <- rbind(cbind(crossprod(X, WX), crossprod(X, WZ)),
             cbind(crossprod(Z, WX), crossprod(Z, WZ) + s2 * Ginv)) / s2
  Cinv <- solve(C)
  # conditional covariance of the random effects at the fixed effects (condVar)
  Rinv <- solve(crossprod(Z, WZ) / s2 + Ginv)
  q <- ncol(blocks[[1]]$Z)
  lev <- levels(factor(blocks[[1]]$group))
  A <- lapply(seq_along(lev), function(k) {
    idx <- (k - 1) * q + seq_len(q)
    Rinv[idx, idx, drop = FALSE]
  })
  list(Cinv = Cinv, q = q, lev = lev, n_re = ncol(Z), A = A)
}

conditional_se <- function(fit, H, x, z, g) {
  k <- match(g, H$lev)
  zz <- numeric(H$n_re)
  zz[(k - 1) * H$q + seq_len(H$q)] <- z
  a <- c(x, zz)
  pev <- drop(t(a) %*% H$Cinv %*% a)
  V <- vcov(fit)
  N <- nrow(fit$data); p <- ncol(V)
  Vinv <- solve(H$Cinv[seq_len(p), seq_len(p)])
  # B_g' z from the cross block: C^ZX = -B V, so c = x - B' z = x + V^-1 (C^XZ z)
  cvec <- x + drop(Vinv %*% (H$Cinv[seq_len(p), -seq_len(p)] %*% zz))
  inflate <- (N / (N - p) - 1) * drop(t(cvec) %*% V %*% cvec)
  c(se = sqrt(pev + inflate), se_plain = sqrt(pev),
    vcov_block_check = max(abs(H$Cinv[seq_len(p), seq_len(p)] - V)))
}

residual_block <- function(fit, theta, y) {
  mu <- fitted(fit)   # level Q, offset included: the conditional means' log
  mu <- exp(mu)
  dev <- negative.binomial(theta)$dev.resids(y, mu, rep(1, length(y)))
  list(pearson = (y - mu) / sqrt(mu + mu^2 / theta),
       deviance = sign(y - mu) * sqrt(pmax(dev, 0)),
       working = unname(residuals(fit, type = "response")),
       r_pearson = unname(residuals(fit, type = "pearson")))
}

# nlme's apVar (log SDs, logit((1 + rho) / 2), log sigma) and, by the delta
# method, the standard errors of the variances and covariance (upper triangle
# of getVarCov row by row: var1, cov12, var2)
apvar_block <- function(fit) {
  A <- fit$apVar
  if (is.character(A)) return(list(apVar = A))
  pars <- attr(A, "Pars")
  sd <- exp(pars[-length(pars)][seq_len(if (length(pars) == 2) 1 else 2)])
  J <- if (length(pars) == 2) {
    matrix(c(2 * sd^2, 0), 1)
  } else {
    p <- plogis(pars[3]); rho <- 2 * p - 1; cv <- rho * sd[1] * sd[2]
    rbind(c(2 * sd[1]^2, 0, 0, 0), c(cv, cv, sd[1] * sd[2] * 2 * p * (1 - p), 0),
          c(0, 2 * sd[2]^2, 0, 0))
  }
  list(apVar = unname(A[, ]), pars = unname(pars), par_names = names(pars),
       bse_re = sqrt(diag(J %*% A[, ] %*% t(J))))
}

write_case <- function(name, dat, out) {
  dir.create(file.path(out_root, name), recursive = TRUE, showWarnings = FALSE)
  write.csv(dat, file.path(out_root, name, "data.csv"), row.names = FALSE)
  out$versions <- versions
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
             file.path(out_root, name, "expected.json"))
}

# fixed-effects rows of a grid whose factors carry the data's levels
grid_rows <- function(fit, grid) {
  model.matrix(delete.response(terms(fit$terms)), grid)
}

# ---------------------------------------------------------------------------
# Case 1: the seed (counts ~ RNAi, 4 slides)
# ---------------------------------------------------------------------------
seed <- read.csv(seed_csv, stringsAsFactors = TRUE)
seed_case <- function() {
  r <- fit_pql(counts ~ RNAi, ~ 1 | slide, seed)
  fit <- r$fit
  grid <- data.frame(RNAi = factor(c("Control", "Target"), levels = levels(seed$RNAi)))
  L <- grid_rows(fit, grid)
  pop <- mean_scale(contrasts(fit, L))
  tt <- summary(fit)$tTable
  ttest <- contrasts(fit, matrix(c(1, 1), 1))
  # conditional: one row per slide, at the slide's own RNAi level
  slides <- levels(seed$slide)
  rna <- ifelse(grepl("^Target", slides), "Target", "Control")
  cgrid <- data.frame(RNAi = factor(rna, levels = levels(seed$RNAi)), slide = slides)
  Xc <- grid_rows(fit, cgrid)
  H <- henderson(fit, model.matrix(fit, data = seed),
                 list(list(Z = matrix(1, nrow(seed), 1), group = seed$slide,
                           G = as.matrix(getVarCov(fit)))))
  cse <- t(sapply(seq_along(slides), function(i) conditional_se(fit, H, Xc[i, ], 1, slides[i])))
  eta1 <- predict(fit, newdata = cgrid, level = 1)
  list(fit = fit, theta = r$theta, out = list(
    formula = "counts ~ RNAi", groups = "slide", re_formula = NA,
    theta = r$theta, N = nrow(seed), tTable_df = unname(tt[, "DF"]),
    grid = grid, population = pop,
    t_test_target_mean = list(lower = exp(ttest$lower), upper = exp(ttest$upper)),
    conditional = list(grid = cgrid, linpred = unname(eta1),
                       se_link = unname(cse[, "se"]), se_link_vcov = unname(cse[, "se_plain"]),
                       vcov_block_check = max(cse[, "vcov_block_check"])),
    random_effects_cov = unname(sapply(H$A, function(a) a[1, 1])),
    apvar = apvar_block(fit),
    residuals_head = lapply(residual_block(fit, r$theta, seed$counts), function(v) v[1:20]),
    marginal_means = mean_scale(contrasts(fit, L)),
    emmeans = emmeans_block(fit, ~ RNAi, seed),
    ratios = {
      ct <- contrasts(fit, L[2, , drop = FALSE] - L[1, , drop = FALSE])
      list(contrast = "Target / Control", ratio = exp(ct$estimate), ci_lower = exp(ct$lower),
           ci_upper = exp(ct$upper), t = ct$estimate / ct$se, df = ct$df,
           p = 2 * pt(-abs(ct$estimate / ct$se), ct$df))
    }))
}

# ---------------------------------------------------------------------------
# Case 2: 3 treatments between 12 slides, cell area within (issue 10's design)
# ---------------------------------------------------------------------------
simulate_trt <- function() {
  set.seed(1010)
  n_slide <- 12; n_cell <- 40
  slide <- factor(sprintf("s%02d", rep(seq_len(n_slide), each = n_cell)))
  trt <- factor(rep(rep(c("ctrl", "drugA", "drugB"), each = 4), each = n_cell))
  area <- round(runif(n_slide * n_cell, 0.5, 2.0), 3)
  b <- rnorm(n_slide, 0, 0.2)[as.integer(slide)]
  slope <- rnorm(n_slide, 0, 0.4)[as.integer(slide)]
  eta <- 1.5 + c(ctrl = 0, drugA = 0.4, drugB = -0.3)[as.character(trt)] +
    (0.5 + slope) * (area - 1.25) + b
  counts <- rnbinom(length(eta), mu = exp(eta), size = 8)
  d <- data.frame(slide = as.character(slide), trt = as.character(trt), area = area,
                  counts = counts)
  f <- tempfile(fileext = ".csv"); write.csv(d, f, row.names = FALSE)
  read.csv(f, stringsAsFactors = TRUE)
}

trt_case <- function(dat, random, re_formula, name) {
  r <- fit_pql(counts ~ trt + area, random, dat)
  fit <- r$fit
  grid <- expand.grid(trt = levels(dat$trt), area = c(0.8, mean(dat$area), 1.9))
  L <- grid_rows(fit, grid)
  pop <- mean_scale(contrasts(fit, L))
  # emmeans' reference grid: area at its mean, one row per treatment
  emm <- grid_rows(fit, data.frame(trt = levels(dat$trt), area = mean(dat$area)))
  mm <- mean_scale(contrasts(fit, emm))
  pairs <- combn(3, 2)
  D <- t(apply(pairs, 2, function(ij) emm[ij[2], ] - emm[ij[1], ]))
  ct <- contrasts(fit, D)
  ratios <- list(contrast = apply(pairs, 2, function(ij)
                   paste(levels(dat$trt)[ij[2]], "/", levels(dat$trt)[ij[1]])),
                 ratio = exp(ct$estimate), ci_lower = exp(ct$lower), ci_upper = exp(ct$upper),
                 t = ct$estimate / ct$se, df = ct$df,
                 p = 2 * pt(-abs(ct$estimate / ct$se), ct$df))
  Zre <- if (is.null(re_formula)) matrix(1, nrow(dat), 1) else cbind(1, dat$area)
  H <- henderson(fit, model.matrix(fit, data = dat),
                 list(list(Z = Zre, group = dat$slide, G = as.matrix(getVarCov(fit)))))
  cgrid <- data.frame(trt = dat$trt[c(1, 170, 330, 400)], area = c(0.7, 1.2, 1.9, 1.0),
                      slide = as.character(dat$slide[c(1, 170, 330, 400)]))
  Xc <- grid_rows(fit, cgrid)
  Zc <- if (is.null(re_formula)) matrix(1, 4, 1) else cbind(1, cgrid$area)
  cse <- t(sapply(1:4, function(i) conditional_se(fit, H, Xc[i, ], Zc[i, ], cgrid$slide[i])))
  list(fit = fit, out = list(
    formula = "counts ~ trt + area", groups = "slide",
    re_formula = if (is.null(re_formula)) NA else re_formula,
    theta = r$theta, N = nrow(dat), tTable_df = unname(summary(fit)$tTable[, "DF"]),
    grid = grid, population = pop, marginal_means = mm, ratios = ratios,
    emmeans = emmeans_block(fit, ~ trt, dat),
    conditional = list(grid = cgrid, linpred = unname(predict(fit, newdata = cgrid, level = 1)),
                       se_link = unname(cse[, "se"]), se_link_vcov = unname(cse[, "se_plain"]),
                       vcov_block_check = max(cse[, "vcov_block_check"])),
    random_effects_cov = lapply(H$A, function(a) unname(a)),
    apvar = apvar_block(fit),
    residuals_head = lapply(residual_block(fit, r$theta, dat$counts), function(v) v[1:20])))
}

# ---------------------------------------------------------------------------
# Case 5: a within-slide factor interacting with the treatment; marginal means
# of each factor averaged over the other's levels with equal weights
# ---------------------------------------------------------------------------
emm_rows <- function(fit, dat, factor) {
  rhs <- delete.response(terms(fit$terms))
  vars <- all.vars(rhs)
  levs <- lapply(vars, function(v) if (is.factor(dat[[v]])) levels(dat[[v]]) else mean(dat[[v]]))
  grid <- do.call(expand.grid, setNames(levs, vars))
  X <- model.matrix(rhs, grid)
  t(sapply(levels(dat[[factor]]), function(l) colMeans(X[grid[[factor]] == l, , drop = FALSE])))
}

marginal_block <- function(fit, dat, factor) {
  E <- emm_rows(fit, dat, factor)
  levs <- levels(dat[[factor]])
  pairs <- combn(length(levs), 2)
  D <- t(apply(pairs, 2, function(ij) E[ij[2], ] - E[ij[1], ]))
  ct <- contrasts(fit, D)
  list(means = mean_scale(contrasts(fit, E)),
       ratios = list(contrast = apply(pairs, 2, function(ij) paste(levs[ij[2]], "/", levs[ij[1]])),
                     ratio = exp(ct$estimate), ci_lower = exp(ct$lower),
                     ci_upper = exp(ct$upper), t = ct$estimate / ct$se, df = ct$df,
                     p = 2 * pt(-abs(ct$estimate / ct$se), ct$df)),
       emmeans = emmeans_block(fit, as.formula(paste("~", factor)), dat))
}

interaction_case <- function(dat) {
  r <- fit_pql(counts ~ treatment * phase, ~ 1 | slide, dat)
  list(out = list(formula = "counts ~ treatment * phase", groups = "slide", re_formula = NA,
                  theta = r$theta, N = nrow(dat),
                  tTable_df = unname(summary(r$fit)$tTable[, "DF"]),
                  treatment = marginal_block(r$fit, dat, "treatment"),
                  phase = marginal_block(r$fit, dat, "phase")))
}

# ---------------------------------------------------------------------------
# Case 3: slides nested in experiments; conditional on the experiment
# (predict(fit, level = 1)), the slides integrated out
# ---------------------------------------------------------------------------
simulate_nested <- function() {
  set.seed(2020)
  exp_id <- rep(sprintf("e%d", 1:5), each = 4 * 25)
  slide <- rep(sprintf("s%02d", 1:20), each = 25)
  treatment <- rep(rep(c("control", "target"), each = 25), 10)
  eta <- 1.2 + 0.35 * (treatment == "target") + rnorm(5, 0, 0.35)[as.integer(factor(exp_id))] +
    rnorm(20, 0, 0.2)[as.integer(factor(slide))]
  d <- data.frame(experiment = exp_id, slide = slide, treatment = treatment,
                  counts = rnbinom(length(eta), mu = exp(eta), size = 6))
  f <- tempfile(fileext = ".csv"); write.csv(d, f, row.names = FALSE)
  read.csv(f, stringsAsFactors = TRUE)
}

nested_case <- function(dat) {
  r <- fit_pql(counts ~ treatment, ~ 1 | experiment / slide, dat)
  fit <- r$fit
  rs <- lapply(pdMatrix(fit$modelStruct$reStruct), function(m) m * fit$sigma^2)
  one <- matrix(1, nrow(dat), 1)
  H <- henderson(fit, model.matrix(fit, data = dat),
                 list(list(Z = one, group = dat$experiment, G = rs$experiment),
                      list(Z = one, group = dat$slide, G = rs$slide)))
  cgrid <- data.frame(treatment = factor(c("control", "target", "target"),
                                         levels = levels(dat$treatment)),
                      experiment = c("e1", "e3", "e5"))
  Xc <- grid_rows(fit, cgrid)
  cse <- t(sapply(1:3, function(i) conditional_se(fit, H, Xc[i, ], 1, cgrid$experiment[i])))
  list(out = list(
    formula = "counts ~ treatment", groups = "experiment", re_formula = NA,
    vc_formula = list(slide = "0 + C(slide)"), theta = r$theta, N = nrow(dat),
    tTable_df = unname(summary(fit)$tTable[, "DF"]),
    cov_re = list(experiment = unname(rs$experiment[1, 1]), slide = unname(rs$slide[1, 1])),
    conditional = list(grid = cgrid, linpred = unname(predict(fit, newdata = cgrid, level = 1)),
                       se_link = unname(cse[, "se"]), se_link_vcov = unname(cse[, "se_plain"]),
                       vcov_block_check = max(cse[, "vcov_block_check"])),
    random_effects_cov = unname(sapply(H$A, function(a) a[1, 1]))))
}

# ---------------------------------------------------------------------------
# Case 4: an exposure (offset(log(exposure))), predicted on new exposures
# ---------------------------------------------------------------------------
offset_case <- function(dat) {
  # predict.glmmPQL evaluates offset terms as column names, so the log is a column
  dat$log_exposure <- log(dat$exposure)
  r <- fit_pql(counts ~ treatment + offset(log_exposure), ~ 1 | slide, dat)
  fit <- r$fit
  grid <- data.frame(treatment = factor(c("control", "target", "target"),
                                        levels = levels(dat$treatment)),
                     exposure = c(1, 0.5, 2.5))
  grid$log_exposure <- log(grid$exposure)
  L <- model.matrix(~ treatment, grid)
  ct <- contrasts(fit, L)
  off <- log(grid$exposure)
  ct$estimate <- ct$estimate + off; ct$lower <- ct$lower + off; ct$upper <- ct$upper + off
  list(out = list(formula = "counts ~ treatment", groups = "slide", re_formula = NA,
                  exposure = "exposure", theta = r$theta, N = nrow(dat),
                  grid = grid, population = mean_scale(ct),
                  r_predict = unname(predict(fit, newdata = grid, level = 0,
                                             type = "response"))))
}

s <- seed_case()
write_case("seed", seed, s$out)
cat(sprintf("seed: Target mean %.4f [%.4f, %.4f] on %g df\n", s$out$population$mean[2],
            s$out$population$mean_ci_lower[2], s$out$population$mean_ci_upper[2],
            s$out$population$df[2]))

trt <- simulate_trt()
a <- trt_case(trt, ~ 1 | slide, NULL, "trt_area")
write_case("trt_area", trt, a$out)
cat(sprintf("trt_area: df %s; ratios p %s\n", paste(a$out$tTable_df, collapse = " "),
            paste(signif(a$out$ratios$p, 4), collapse = " ")))
b <- trt_case(trt, ~ area | slide, "~area", "trt_area_slope")
write_case("trt_area_slope", trt, b$out)
cat("vcov block of C^-1 equals vcov(fit) to",
    max(s$out$conditional$vcov_block_check, a$out$conditional$vcov_block_check,
        b$out$conditional$vcov_block_check), "\n")

nested <- simulate_nested()
n <- nested_case(nested)
write_case("nested", nested, n$out)
cat(sprintf("nested: experiment variance %.4f, slide variance %.4f\n",
            n$out$cov_re$experiment, n$out$cov_re$slide))
off_dat <- read.csv(normalizePath(file.path(script_dir, "..", "reference", "v05_offset",
                                            "data.csv")), stringsAsFactors = TRUE)
o <- offset_case(off_dat)
write_case("offset", off_dat, o$out)
cat(sprintf("offset: R's predict agrees with the by-hand mean to %.2g\n",
            max(abs(o$out$r_predict / o$out$population$mean - 1))))
ia_dat <- read.csv(normalizePath(file.path(script_dir, "..", "reference",
                                           "v09_within_factor_interaction", "data.csv")),
                   stringsAsFactors = TRUE)
ia <- interaction_case(ia_dat)
write_case("interaction", ia_dat, ia$out)
cat(sprintf("interaction: treatment ratio p %.4g on %g df, phase ratios on %s df\n",
            ia$out$treatment$ratios$p, ia$out$treatment$ratios$df,
            paste(ia$out$phase$ratios$df, collapse = " ")))
