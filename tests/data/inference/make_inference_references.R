# Inference references for glmmnb (issue 10): for each design, the glmmPQL fit's
#   * nlme:::anova.lme(fit, type = "marginal") and type = "sequential"
#     (numDF, denDF, F-value, p-value per term) and the df nlme assigns to
#     columns (fixDF$X) and terms (fixDF$terms);
#   * nlme::intervals(fit) (fixed effects, random-effect SDs / correlations,
#     residual SD) and the approximate covariance apVar behind it, both with
#     nlme's default finite-difference step and with .relStep = 1e-4;
#   * lmerTest's Satterthwaite df on glmmPQL's own final working data:
#       w <- fit$data
#       lmer(zz ~ <fixed rhs> + (<random>), weights = 1/invwt, data = w, REML = FALSE)
#     summary() coefficient df and contest() joint F tests per term, for the
#     marginal hypotheses and for anova.lme's sequential ones.
#
# Usage (from the repository root):
#   Rscript tests/data/inference/make_inference_references.R
# Output: tests/data/inference/<case>.json beside this script (and the
# simulated data of the designs that are not in tests/data/reference, as
# <case>.csv).

suppressMessages({
  library(MASS)
  library(nlme)
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f[1])) else "tests/data/inference"
})
out_root <- script_dir
ref_root <- normalizePath(file.path(script_dir, "..", "reference"))

pkg_versions <- function() {
  p <- c("MASS", "nlme", "lme4", "lmerTest", "jsonlite")
  setNames(as.list(vapply(p, function(x) as.character(packageVersion(x)), "")), p)
}

to_json <- function(x) {
  toJSON(x, auto_unbox = TRUE, pretty = TRUE, digits = NA, null = "null",
         na = "null", matrix = "rowmajor")
}

anova_table <- function(fit, type) {
  a <- nlme:::anova.lme(fit, type = type)
  list(terms = rownames(a), numDF = as.integer(a$numDF), denDF = as.integer(a$denDF),
       F = a[["F-value"]], p = a[["p-value"]])
}

interval_block <- function(m) {
  m <- as.matrix(m)
  list(names = rownames(m), lower = unname(m[, "lower"]), est = unname(m[, "est."]),
       upper = unname(m[, "upper"]))
}

intervals_block <- function(fit) {
  if (is.character(fit$apVar)) {
    # nlme cannot give var-cov intervals (e.g. a variance near zero); record
    # its message and the fixed-effects intervals it still gives
    iv <- intervals(fit, which = "fixed")
    return(list(fixed = interval_block(iv$fixed), error = fit$apVar))
  }
  iv <- intervals(fit)
  re <- lapply(iv$reStruct, interval_block)
  list(fixed = interval_block(iv$fixed), reStruct = re,
       reStruct_order = names(iv$reStruct),
       sigma = list(lower = unname(iv$sigma[["lower"]]), est = unname(iv$sigma[["est."]]),
                    upper = unname(iv$sigma[["upper"]])),
       apVar = unname(fit$apVar), apVar_pars = names(attr(fit$apVar, "Pars")),
       apVar_est = unname(attr(fit$apVar, "Pars")))
}

# lmerTest on the final working data of the glmmPQL fit
satterthwaite_block <- function(fit, fixed, lmer_random) {  # fit: the glmmPQL fit
  w <- fit$data
  rhs <- sub("^[^~]*~", "", fixed)
  f <- as.formula(paste("zz ~", rhs, "+", lmer_random))
  m <- lmer(f, weights = 1 / invwt, data = w, REML = FALSE,
            control = lmerControl(optimizer = "bobyqa",
                                  optCtrl = list(rhobeg = 2e-3, rhoend = 1e-12,
                                                 maxfun = 1e5)))
  s <- summary(m, ddf = "Satterthwaite")$coefficients
  X <- model.matrix(m)
  assign <- attr(X, "assign")
  labels <- c("(Intercept)", attr(terms(m), "term.labels"))
  terms_out <- lapply(sort(unique(assign)), function(a) {
    L <- diag(ncol(X))[assign == a, , drop = FALSE]
    ct <- contest(m, L, joint = TRUE, ddf = "Satterthwaite")
    list(term = labels[a + 1], NumDF = as.integer(ct$NumDF), DenDF = ct$DenDF,
         F = ct[["F value"]], p = ct[["Pr(>F)"]])
  })
  # nlme's sequential hypotheses: rows of solve(t(varFixFact)), the upper
  # triangular factor of vcov^-1 (anova.lme's c0), tested on Satterthwaite df
  L_seq <- solve(t(attr(fit$fixDF, "varFixFact")))
  seq_out <- lapply(sort(unique(assign)), function(a) {
    ct <- contest(m, L_seq[assign == a, , drop = FALSE], joint = TRUE,
                  ddf = "Satterthwaite")
    list(term = labels[a + 1], NumDF = as.integer(ct$NumDF), DenDF = ct$DenDF)
  })
  list(formula = deparse(f), coef_names = rownames(s), estimate = unname(s[, "Estimate"]),
       se = unname(s[, "Std. Error"]), df = unname(s[, "df"]),
       sigma = sigma(m), theta = unname(getME(m, "theta")), deviance = deviance(m),
       terms = terms_out, terms_sequential = seq_out)
}

pql_fit <- function(fixed, random, theta, dat, control = NULL) {
  suppressMessages(glmmPQL(as.formula(fixed), random = random,
                           family = negative.binomial(theta = theta), data = dat,
                           verbose = FALSE, control = control))
}

# offset: NULL or e.g. "log(exposure)"; it enters glm.nb and glmmPQL, while the
# working response zz already has it removed (lmer gets the fixed part without it)
run_case <- function(name, dat, fixed, random, lmer_random, groups, re_formula = NULL,
                     vc_formula = NULL, offset = NULL, data_file) {
  fixed_lmer <- fixed
  if (!is.null(offset)) fixed <- paste0(fixed, " + offset(", offset, ")")
  nb <- glm.nb(as.formula(fixed), data = dat)
  theta <- nb$theta
  fit <- pql_fit(fixed, random, theta, dat)
  # nlme's apVar is a finite-difference Hessian (fdHess) with relative steps
  # of eps^(1/3) = 6e-6, where rounding moves it by up to ~15% on these data;
  # the same fit with steps of 1e-4 gives the converged Hessian.
  fit_fine <- pql_fit(fixed, random, theta, dat, control = lmeControl(.relStep = 1e-4))
  out <- list(
    name = name, data_file = data_file, n_obs = nrow(dat), formula = fixed_lmer,
    groups = groups, re_formula = re_formula, vc_formula = vc_formula, offset = offset,
    random_r = deparse(random), theta = theta,
    params = unname(fixef(fit)), param_names_r = names(fixef(fit)),
    fixDF_X = unname(fit$fixDF$X), fixDF_terms = unname(fit$fixDF$terms),
    fixDF_term_names = names(fit$fixDF$terms),
    vcov = unname(vcov(fit)), sigma = fit$sigma,
    anova_marginal = anova_table(fit, "marginal"),
    anova_sequential = anova_table(fit, "sequential"),
    intervals = intervals_block(fit),
    intervals_relstep_1e4 = intervals_block(fit_fine),
    satterthwaite = satterthwaite_block(fit, fixed_lmer, lmer_random),
    r_version = R.version.string, packages = pkg_versions()
  )
  writeLines(to_json(out), file.path(out_root, paste0(name, ".json")))
  cat(sprintf("%-18s marginal F = %s on %s / %s df\n", name,
              paste(signif(out$anova_marginal$F, 5), collapse = ","),
              paste(out$anova_marginal$numDF, collapse = ","),
              paste(out$anova_marginal$denDF, collapse = ",")))
  cat(sprintf("%-18s Satterthwaite df = %s\n", "",
              paste(signif(out$satterthwaite$df, 5), collapse = ",")))
}

reference <- function(case) {
  read.csv(file.path(ref_root, case, "data.csv"), stringsAsFactors = TRUE)
}

# 12 slides x 40 cells: a 3-level treatment between slides, cell area within;
# `cond` is a factor whose "B" column is constant on every slide while its "C"
# column varies within slides (one term estimated at two levels).
simulate_trt3 <- function() {
  set.seed(20261002)
  n_slides <- 12
  n_cells <- 40
  slide <- sprintf("s%02d", rep(seq_len(n_slides), each = n_cells))
  trt_slide <- rep(c("ctrl", "drugA", "drugB"), length.out = n_slides)
  trt <- trt_slide[rep(seq_len(n_slides), each = n_cells)]
  b_slide <- rep(c(FALSE, TRUE), each = 2, length.out = n_slides)
  is_b <- b_slide[rep(seq_len(n_slides), each = n_cells)]
  area <- round(rnorm(n_slides * n_cells), 4)
  cond <- ifelse(is_b, "B", ifelse(runif(n_slides * n_cells) < 0.4, "C", "A"))
  u <- rnorm(n_slides, sd = 0.2)[rep(seq_len(n_slides), each = n_cells)]
  eta <- 1.2 + c(ctrl = 0, drugA = 0.5, drugB = 0.9)[trt] + 0.3 * area +
    0.2 * (cond == "C") + u
  dat <- data.frame(slide = slide, trt = trt, area = area, cond = cond,
                    counts = rnbinom(length(eta), size = 4, mu = exp(eta)))
  csv <- file.path(out_root, "trt3.csv")
  write.csv(dat, csv, row.names = FALSE)
  read.csv(csv, stringsAsFactors = TRUE)   # fit exactly what is on disk
}

trt3 <- simulate_trt3()
run_case("seed", reference("v01_seed"), "counts ~ RNAi", ~ 1 | slide, "(1 | slide)",
         "slide", data_file = "reference/v01_seed/data.csv")
run_case("trt3", trt3, "counts ~ trt + area", ~ 1 | slide, "(1 | slide)", "slide",
         data_file = "inference/trt3.csv")
run_case("trt3_interaction", trt3, "counts ~ trt * area", ~ 1 | slide, "(1 | slide)",
         "slide", data_file = "inference/trt3.csv")
run_case("trt3_mixed_term", trt3, "counts ~ trt + cond", ~ 1 | slide, "(1 | slide)",
         "slide", data_file = "inference/trt3.csv")
run_case("v09_within_factor_interaction", reference("v09_within_factor_interaction"),
         "counts ~ treatment * phase", ~ 1 | slide, "(1 | slide)", "slide",
         data_file = "reference/v09_within_factor_interaction/data.csv")
run_case("v11_nested", reference("v11_nested"), "counts ~ treatment",
         ~ 1 | experiment / slide, "(1 | experiment / slide)", "experiment",
         vc_formula = list(slide = "0 + C(slide)"),
         data_file = "reference/v11_nested/data.csv")
run_case("v06_random_slope", reference("v06_random_slope"), "counts ~ treatment + area",
         ~ area | slide, "(area | slide)", "slide", re_formula = "~area",
         data_file = "reference/v06_random_slope/data.csv")
run_case("trt3_no_intercept", trt3, "counts ~ 0 + trt + area", ~ 1 | slide, "(1 | slide)",
         "slide", data_file = "inference/trt3.csv")
x04 <- read.csv(file.path(script_dir, "..", "r", "x04_three_levels", "data.csv"),
                stringsAsFactors = TRUE)
run_case("x04_three_levels", x04, "counts ~ treatment + area", ~ 1 | experiment / slide / field,
         "(1 | experiment / slide / field)", "experiment",
         vc_formula = list(slide = "0 + C(slide)", field = "0 + C(field)"),
         data_file = "r/x04_three_levels/data.csv")
run_case("v05_offset", reference("v05_offset"), "counts ~ treatment", ~ 1 | slide,
         "(1 | slide)", "slide", offset = "log(exposure)",
         data_file = "reference/v05_offset/data.csv")
run_case("v07_low_counts_unbalanced", reference("v07_low_counts_unbalanced"),
         "counts ~ treatment", ~ 1 | slide, "(1 | slide)", "slide",
         data_file = "reference/v07_low_counts_unbalanced/data.csv")
