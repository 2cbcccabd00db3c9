# Fit one data set with MASS::glm.nb + glmmPQL and print the numbers as one
# line of key=value pairs (no JSON package needed), for tests/test_r_live.py.
# Usage: Rscript fit_glmmpql.R DATA.csv FORMULA GROUPS [RANDOM_LHS] [OFFSET_COL]
suppressMessages({library(MASS); library(nlme)})
args <- commandArgs(trailingOnly = TRUE)
dat <- read.csv(args[1], stringsAsFactors = TRUE)
fixed <- as.formula(args[2])
lhs <- if (length(args) >= 4 && nzchar(args[4])) args[4] else "1"
random <- as.formula(paste("~", lhs, "|", args[3]))
if (length(args) >= 5 && nzchar(args[5])) {
  dat$.off <- log(dat[[args[5]]])
  fixed_nb <- update(fixed, . ~ . + offset(.off))
} else {
  fixed_nb <- fixed
}
theta <- glm.nb(fixed_nb, data = dat)$theta
fit <- glmmPQL(fixed_nb, random = random, data = dat, verbose = FALSE,
               family = negative.binomial(theta = theta))
tt <- summary(fit)$tTable
out <- c(theta = theta, params = unname(tt[, "Value"]), bse = unname(tt[, "Std.Error"]),
         df = unname(tt[, "DF"]), pvalues = unname(tt[, "p-value"]), sigma = fit$sigma)
cat(paste(names(out), sprintf("%.15g", out), sep = "=", collapse = " "), "\n")
