# What R does on separated designs (issue 9, "complete separation") and on one
# huge exposure: glm.nb, then glmmPQL at glm.nb's theta (and at a fixed theta).
# Records every warning and error, the fixed-effects table, RE and residual SD.
#   Rscript tests/data/r_separation/make_r_separation.R
# writes tests/data/r_separation/r_separation.json (and the designs as CSV).
suppressMessages({library(MASS); library(nlme); library(jsonlite)})
here <- "tests/data/r_separation"

run <- function(expr) {
  warns <- character(0)
  val <- tryCatch(withCallingHandlers(expr, warning = function(w) {
    warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")}),
    error = function(e) structure(list(msg = conditionMessage(e)), class = "fail"))
  list(value = val, warnings = unique(warns))
}

pql_block <- function(fixed, random, theta, d, offset = NULL) {
  r <- run(glmmPQL(fixed, random = random, family = negative.binomial(theta), data = d,
                   verbose = FALSE))
  out <- list(theta = theta, warnings = r$warnings)
  if (inherits(r$value, "fail")) return(c(out, list(error = r$value$msg)))
  fit <- r$value
  tt <- summary(fit)$tTable
  c(out, list(param_names_r = rownames(tt), params = unname(tt[, 1]), bse = unname(tt[, 2]),
              df = unname(tt[, 3]), pvalues = unname(tt[, 5]),
              re_sd = fit$sigma * sqrt(as.matrix(fit$modelStruct$reStruct[[1]])[1, 1]),
              resid_sd = fit$sigma, eta_min = min(fitted(fit))))
}

glmnb_block <- function(fixed, d) {
  r <- run(glm.nb(fixed, data = d))
  out <- list(warnings = r$warnings)
  if (inherits(r$value, "fail")) return(c(out, list(error = r$value$msg)))
  fit <- r$value
  c(out, list(theta = fit$theta, params = unname(coef(fit)),
              bse = unname(sqrt(diag(vcov(fit)))), fitted_min = min(fitted(fit))))
}

case <- function(name, fixed, random, d, theta_fixed = 2, formula_py, groups) {
  write.csv(d, file.path(here, paste0(name, ".csv")), row.names = FALSE)
  g <- glmnb_block(fixed, d)
  res <- list(formula = formula_py, groups = groups, glm_nb = g,
              pql_fixed_theta = pql_block(fixed, random, theta_fixed, d))
  if (is.null(g$error)) res$pql = pql_block(fixed, random, g$theta, d)
  res
}

out <- list(versions = list(R = R.version.string,
                            MASS = as.character(packageVersion("MASS")),
                            nlme = as.character(packageVersion("nlme"))))

# 1. the issue's design: level a all zero, groups cross the factor
d1 <- data.frame(y = c(0, 0, 0, 0, 2, 5, 3, 1), f = rep(c("a", "b"), each = 4),
                 g = rep(c("a", "b"), 4))
out$s1_issue <- case("s1_issue", y ~ f, ~ 1 | g, d1, formula_py = "y ~ f", groups = "g")

# 2. separation in a between-group factor: every group of level a all zero
set.seed(9)
d2 <- data.frame(f = rep(c("a", "b", "c"), each = 12), g = rep(sprintf("g%d", 1:9), each = 4))
d2$y <- ifelse(d2$f == "a", 0, rnbinom(36, size = 3, mu = ifelse(d2$f == "b", 4, 8)))
out$s2_between <- case("s2_between", y ~ f, ~ 1 | g, d2, formula_py = "y ~ f", groups = "g")

# 3. quasi-separation: level a has a single non-zero count (not separated)
d3 <- d1; d3$y[1] <- 1
out$s3_quasi <- case("s3_quasi", y ~ f, ~ 1 | g, d3, formula_py = "y ~ f", groups = "g")

# 4. more rows, a covariate, a three-level factor with one all-zero level
#    crossed with the groups
set.seed(4)
n <- 60
d4 <- data.frame(f = rep(c("a", "b", "c"), length.out = n), g = rep(sprintf("s%d", 1:6), each = 10),
                 x = round(rnorm(n), 3))
u <- rnorm(6, 0, 0.5)[as.integer(factor(d4$g))]
d4$y <- ifelse(d4$f == "b", 0, rnbinom(n, size = 4, mu = exp(1 + 0.4 * d4$x + u)))
out$s4_more_rows <- case("s4_more_rows", y ~ f + x, ~ 1 | g, d4, formula_py = "y ~ f + x",
                         groups = "g")

# 4b. the same with a random slope of x (re_formula "~x"): lme's default nlminb
#     stops ("iteration limit reached"), with or without the separated level, so
#     this is not about separation; with opt = "optim" it fits (for the record only)
out$s4_slope <- list(formula = "y ~ f + x", groups = "g", re_formula = "~x",
                     pql_fixed_theta = pql_block(y ~ f + x, ~ x | g, 2, d4),
                     pql_without_level_b = pql_block(y ~ f + x, ~ x | g, 2, d4[d4$f != "b", ]))
r <- glmmPQL(y ~ f + x, random = ~ x | g, family = negative.binomial(2), data = d4,
             verbose = FALSE, control = lmeControl(opt = "optim"))
out$s4_slope$pql_optim <- list(params = unname(fixef(r)), resid_sd = r$sigma)

# 5. one huge exposure in the seed data (offset log(exposure)): glm.nb, glmmPQL
#    at theta 25 and Poisson glmmPQL (glmmnb's theta = inf)
seed <- read.csv("tests/data/reference/v01_seed/data.csv")
for (e in c(1e6, 1e9)) {
  seed$lexp <- 0; seed$lexp[8] <- log(e)
  p_pois <- run(glmmPQL(counts ~ RNAi + offset(lexp), random = ~ 1 | slide, family = poisson,
                        data = seed, verbose = FALSE))
  pois <- if (inherits(p_pois$value, "fail")) list(error = p_pois$value$msg) else {
    tt <- summary(p_pois$value)$tTable
    list(params = unname(tt[, 1]), bse = unname(tt[, 2]), resid_sd = p_pois$value$sigma)}
  out[[sprintf("e_exposure_%g", e)]] <- list(
    row = 7, exposure = e, glm_nb = glmnb_block(counts ~ RNAi + offset(lexp), seed),
    pql_fixed_theta = pql_block(counts ~ RNAi + offset(lexp), ~ 1 | slide, 25, seed),
    pql_poisson = c(pois, list(warnings = p_pois$warnings)))
}

# 6. a single positive count (the fuzz's design; Poisson, offset log(e))
d6 <- data.frame(y = c(0, 0, 0, 0, 1, 0, 0), f = c("a", "b", "a", "b", "b", "b", "a"),
                 x = c(-0.29, 0.28, -0.03, 0.33, -0.61, -0.33, -0.61),
                 g = c("g0", "g0", "g1", "g1", "g1", "g1", "g1"),
                 e = c(0.40, 0.56, 0.45, 0.38, 2.43, 2.60, 1.65))
write.csv(d6, file.path(here, "s6_single_count.csv"), row.names = FALSE)
r6 <- run(glmmPQL(y ~ f + x + offset(log(e)), random = ~ 1 | g, family = poisson, data = d6,
                  verbose = FALSE))
out$s6_single_count <- if (inherits(r6$value, "fail")) list(error = r6$value$msg,
                                                            warnings = r6$warnings) else
  list(params = unname(fixef(r6$value)), resid_sd = r6$value$sigma, warnings = r6$warnings)

out$versions$note <- paste("glm.nb with its defaults; glmmPQL defaults (niter 10);",
                           "pql_fixed_theta at theta 2 (25 for e_exposure_*), pql at glm.nb's theta")
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(here, "r_separation.json"))
