# Golden values of the Cox engine's options (weights, robust variance, strata, Breslow, delayed entry)
# on R's lung data (tests/reference/cox_lung.csv). Writes tests/reference/cox_engine.json.
# R 4.2.2, survival 3.5-3:  Rscript tests/reference/cox_engine.R
suppressMessages({library(survival); library(jsonlite)})
d <- read.csv("tests/reference/cox_lung.csv")
d$female <- as.numeric(d$sex == "Female")
d$w <- 0.5 + (seq_len(nrow(d)) %% 7) / 4          # deterministic case weights
d$grp <- rep(1:3, length.out = nrow(d))
d$entry <- ifelse(seq_len(nrow(d)) %% 5 == 0, pmin(d$time - 1, 30), 0)
pick <- function(f, robust = FALSE) {
  out <- list(coef = unname(coef(f)), loglik = f$loglik,
              se = unname(sqrt(diag(if (is.null(f$naive.var)) f$var else f$naive.var))))
  if (robust) out$se_robust <- unname(sqrt(diag(f$var)))
  out
}
res <- list(
  robust = pick(coxph(Surv(time, status) ~ age + female, data = d, robust = TRUE), TRUE),
  weighted = pick(coxph(Surv(time, status) ~ age + female, data = d, weights = w, robust = TRUE), TRUE),
  weighted_breslow = pick(coxph(Surv(time, status) ~ age + female, data = d, weights = w, ties = "breslow",
                                robust = TRUE), TRUE),
  strata = pick(coxph(Surv(time, status) ~ age + female + strata(grp), data = d, robust = TRUE), TRUE),
  entry = pick(coxph(Surv(entry, time, status) ~ age + female, data = d), FALSE)
)
write_json(res, "tests/reference/cox_engine.json", digits = NA, auto_unbox = FALSE, pretty = TRUE)
