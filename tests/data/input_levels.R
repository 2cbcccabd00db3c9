# R's numbers for the unused-level cases of tests/test_input_errors.py: R's
# model.frame drops factor levels that no row has, so a level removed by
# subsetting (or an empty category) changes nothing; a factor left with a
# single level is an error ("contrasts can be applied only to factors with 2
# or more levels").  The test compares against the JSON this writes.
# Usage, from the repository root:  Rscript tests/data/input_levels.R
suppressMessages({library(MASS); library(nlme); library(jsonlite)})
d <- read.csv("glmmnb/datasets/microscopy/microscopy.csv", stringsAsFactors = TRUE)
d$batch <- factor(c("a", "b", "c")[(seq_len(nrow(d)) - 1) %% 3 + 1])
kept <- d[d$batch != "c", ]  # batch keeps its unused level "c"
fit <- glmmPQL(counts ~ RNAi + batch, random = ~ 1 | slide, family = negative.binomial(2),
               data = kept, verbose = FALSE)
single <- try(glmmPQL(counts ~ RNAi + experiment, random = ~ 1 | slide,
                      family = negative.binomial(2), data = d[d$experiment == "day1", ],
                      verbose = FALSE), silent = TRUE)
out <- list(
  r_version = R.version.string, MASS = as.character(packageVersion("MASS")),
  nlme = as.character(packageVersion("nlme")),
  subset = list(levels_in_data = levels(kept$batch), names = names(fixef(fit)),
                params = unname(fixef(fit)),
                bse = unname(summary(fit)$tTable[, "Std.Error"]),
                df = unname(fit$fixDF$X)),
  single_level_error = conditionMessage(attr(single, "condition")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/data/input_levels.json")
