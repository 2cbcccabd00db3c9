# R's numbers for glmmnb.workflows.distributions on the seed counts (the tutorial's
# "Data Distribution" section): MASS::fitdistr fits and car::qqPlot's
# reference line and 95% envelope.  tests/test_distributions.py compares
# against the JSON this writes; it never calls R itself.
# Usage, from the repository root:  Rscript tests/data/fitdistr_seed.R
suppressMessages({library(MASS); library(car); library(jsonlite)})
counts <- read.csv("glmmnb/datasets/microscopy/microscopy.csv")$counts

fit_json <- function(fit) {
  list(estimate = as.list(fit$estimate), sd = as.list(fit$sd),
       vcov = unname(fit$vcov), loglik = fit$loglik, n = fit$n)
}

# qqPlot returns nothing numeric, so replay what it drew: with style "lines"
# the display list ends points(z, ord.x), abline(a, b), lines(upper), lines(lower).
car_qq <- function(distribution, ...) {
  pdf(NULL)
  dev.control("enable")
  qqPlot(counts, distribution, ..., envelope = list(level = 0.95, style = "lines"),
         id = FALSE, grid = FALSE)
  drawn <- recordPlot()[[1]]
  dev.off()
  args <- function(k) drawn[[length(drawn) - k]][[2]][-1]
  list(z = args(3)[[1]]$x, a = unname(args(2)[[1]]), b = unname(args(2)[[2]]),
       upper = args(1)[[1]]$y, lower = args(0)[[1]]$y)
}

poisson <- fitdistr(counts, "Poisson")
negbinom <- fitdistr(counts, "negative binomial")
# fitdistr's BFGS stops ~1e-4 short of the optimum; glm.nb's Newton steps
# for theta (theta.ml) reach the exact ML fit, which glmmnb solves for.
intercept_only <- glm.nb(counts ~ 1)
out <- list(
  r_version = R.version.string,
  mass_version = as.character(packageVersion("MASS")),
  car_version = as.character(packageVersion("car")),
  n = length(counts),
  fitdistr = list(poisson = fit_json(poisson), negative_binomial = fit_json(negbinom)),
  glm_nb_intercept = list(theta = intercept_only$theta, se_theta = intercept_only$SE.theta,
                          mu = exp(unname(coef(intercept_only))),
                          loglik = intercept_only$twologlik / 2),
  qqplot = list(
    norm = car_qq("norm"),
    lnorm = car_qq("lnorm"),
    pois = car_qq("pois", lambda = poisson$estimate),
    nbinom = car_qq("nbinom", size = negbinom$estimate[[1]], mu = negbinom$estimate[[2]])))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/data/fitdistr_seed.json")
