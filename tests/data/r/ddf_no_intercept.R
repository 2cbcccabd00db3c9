# nlme's denominator df for designs without an intercept (tests/test_ddf.py).
# The df depend only on which columns vary within which groups, not on y.
# Usage: Rscript tests/data/r/ddf_no_intercept.R
# Output (R 4.2.2, nlme 3.1-162):  ga gb dose x: 1 1 9 48;  ga gb x: 10 10 48
suppressMessages(library(nlme))
set.seed(1)
experiment <- factor(rep(1:3, each = 20))
slide <- factor(rep(1:12, each = 5))
g <- factor(ifelse(as.integer(experiment) == 2, "b", "a"))   # constant within experiments
dose <- rep(c(0, 1, 2, 3), 3)[as.integer(slide)]              # constant within slides
x <- sin(seq_len(60) - 1)                                     # varies within slides
d <- data.frame(y = rnorm(60), experiment, slide, g, dose, x)
print(lme(y ~ 0 + g + dose + x, random = ~ 1 | experiment / slide, data = d,
          method = "ML")$fixDF$X)
print(lme(y ~ 0 + g + x, random = ~ 1 | slide, data = d, method = "ML")$fixDF$X)
cat(R.version.string, "nlme", as.character(packageVersion("nlme")), "\n")
