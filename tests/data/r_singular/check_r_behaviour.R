# What R does on the random-effects designs of issue 9, item 4 (the outcomes
# glmmnb's check_re_design / find_boundaries follow).  Prints each fit's
# warnings/errors and VarCorr; the output is kept in r_behaviour.txt.
#   Rscript tests/data/r_singular/check_r_behaviour.R > tests/data/r_singular/r_behaviour.txt
# glmer on an all-zero random-effects column is left out: lme4 1.1-31
# segfaults on it (merPredDupdateXwts).
cat(R.version.string, "; MASS", as.character(packageVersion("MASS")), "; nlme",
    as.character(packageVersion("nlme")), "; lme4", as.character(packageVersion("lme4")), "\n")
suppressMessages({library(MASS); library(nlme); library(lme4)})
set.seed(1)
G <- 8; n <- 15
d <- data.frame(g = factor(rep(sprintf("g%d", 1:G), each = n)))
d$x <- rnorm(nrow(d)); d$x2 <- rnorm(nrow(d)); d$x3 <- rnorm(nrow(d))
d$c <- 1; d$zero <- 0
u <- rnorm(G, 0, 0.4)[d$g]
d$y <- rnbinom(nrow(d), size = 3, mu = exp(1 + 0.3 * d$x + u))
d$g2 <- d$g
try_ <- function(label, expr) {
  cat("==", label, "\n")
  r <- tryCatch(withCallingHandlers(expr, warning = function(w) {cat("  WARNING:", conditionMessage(w), "\n"); invokeRestart("muffleWarning")}),
                error = function(e) {cat("  ERROR:", conditionMessage(e), "\n"); NULL})
  if (!is.null(r)) {
    if (inherits(r, "merMod")) {cat("  isSingular:", isSingular(r), "\n"); print(VarCorr(r))}
    else print(VarCorr(r))
  }
}
th <- 3
try_("pql constant column", glmmPQL(y ~ x, random = ~ c | g, family = negative.binomial(th), data = d, verbose = FALSE))
try_("lmer constant column", glmer(y ~ x + (c | g), family = MASS::negative.binomial(th), data = d))
try_("pql zero column", glmmPQL(y ~ x, random = ~ 0 + zero | g, family = negative.binomial(th), data = d, verbose = FALSE))
try_("pql nested = groups", glmmPQL(y ~ x, random = ~ 1 | g/g2, family = negative.binomial(th), data = d, verbose = FALSE))
try_("glmer nested = groups", glmer(y ~ x + (1 | g/g2), family = MASS::negative.binomial(th), data = d))
d3 <- d[d$g %in% c("g1", "g2", "g3"), ]; d3$g <- droplevels(d3$g)
try_("pql 4 coefs 3 groups", glmmPQL(y ~ x, random = ~ x + x2 + x3 | g, family = negative.binomial(th), data = d3, verbose = FALSE))
try_("glmer 4 coefs 3 groups", glmer(y ~ x + (x + x2 + x3 | g), family = MASS::negative.binomial(th), data = d3))
try_("pql 2 coefs 2 groups", glmmPQL(y ~ x, random = ~ x | g, family = negative.binomial(th), data = d[d$g %in% c("g1","g2"),], verbose = FALSE))
try_("glmer 2 coefs 2 groups", glmer(y ~ x + (x | g), family = MASS::negative.binomial(th), data = droplevels(d[d$g %in% c("g1","g2"),])))
try_("glmer 1 group", glmer(y ~ x + (1 | g), family = MASS::negative.binomial(th), data = droplevels(d[d$g %in% c("g1"),])))
try_("pql 1 group", glmmPQL(y ~ x, random = ~ 1 | g, family = negative.binomial(th), data = droplevels(d[d$g %in% c("g1"),]), verbose = FALSE))
