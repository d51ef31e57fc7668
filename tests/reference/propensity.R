# Golden values for helpers/stats/propensity.py and helpers/stats/evalue.py (tests/test_propensity.py).
# Run from the project root:  Rscript tests/reference/propensity.R
# R 4.2.2, survival 3.5-3, jsonlite. Data: survival::veteran (137 patients, binary treatment trt,
# time in days, many tied event times), copied into the JSON so the tests need no R.
suppressPackageStartupMessages({library(survival); library(jsonlite)})

d <- survival::veteran
d$treated <- as.integer(d$trt == 2)
d$prior10 <- as.integer(d$prior == 10)
d$celltype <- as.character(d$celltype)
d$small <- as.integer(d$celltype == "smallcell")
d$adeno <- as.integer(d$celltype == "adeno")
d$large <- as.integer(d$celltype == "large")
# 1. Propensity score: glm logistic, treated ~ karno + age + diagtime + prior10 + celltype dummies
ps_fit <- glm(treated ~ karno + age + diagtime + prior10 + small + adeno + large,
              family = binomial(), data = d, control = glm.control(epsilon = 1e-12, maxit = 100))
ps <- unname(fitted(ps_fit))
p1 <- mean(d$treated)
# 2. Weights: stabilised IPTW (ATE) and overlap weights (ATO)
w_iptw <- ifelse(d$treated == 1, p1 / ps, (1 - p1) / (1 - ps))
w_ato <- ifelse(d$treated == 1, 1 - ps, ps)
ctl <- coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 100)
cox_w <- function(w, ties) {
  f <- coxph(Surv(time, status) ~ treated, data = d, weights = w, robust = TRUE, ties = ties,
             control = ctl)
  list(coef = unname(coef(f)), robust_se = unname(sqrt(diag(f$var))),
       naive_se = unname(sqrt(diag(f$naive.var))), loglik = f$loglik)
}
# 3. Weighted Kaplan-Meier survival at fixed days, per arm
km_times <- c(30, 90, 180, 365)
km_w <- function(w) {
  f <- survfit(Surv(time, status) ~ treated, data = d, weights = w)
  s <- summary(f, times = km_times, extend = TRUE)
  list(times = km_times, control = s$surv[s$strata == "treated=0"],
       treated = s$surv[s$strata == "treated=1"])
}
# 4. Weighted standardised mean difference (Austin and Stuart 2015, eq. in helpers docstring),
#    written out by hand in R as an independent implementation of the same formula
wsmd <- function(x, w, binary) {
  t <- d$treated == 1
  m <- function(s) sum(w[s] * x[s]) / sum(w[s])
  v <- function(s) {
    if (binary) return(m(s) * (1 - m(s)))
    ws <- w[s]; sum(ws) / (sum(ws)^2 - sum(ws^2)) * sum(ws * (x[s] - m(s))^2)
  }
  (m(t) - m(!t)) / sqrt((v(t) + v(!t)) / 2)
}
smd <- list()
for (w_name in c("none", "iptw", "ato")) {
  w <- switch(w_name, none = rep(1, nrow(d)), iptw = w_iptw, ato = w_ato)
  smd[[w_name]] <- list(karno = wsmd(d$karno, w, FALSE), age = wsmd(d$age, w, FALSE),
                        prior10 = wsmd(d$prior10, w, TRUE), small = wsmd(d$small, w, TRUE))
}
# 5. E-value formulas (VanderWeele and Ding 2017, Ann Intern Med 167:268) written out in R;
#    the published worked example (RR 3.9, 95% CI 1.8-8.7: E-values 7.2 and 3.0) is checked in the test.
ev_rr <- function(rr) { rr <- ifelse(rr < 1, 1 / rr, rr); rr + sqrt(rr * (rr - 1)) }
hr_common <- function(hr) (1 - 0.5^sqrt(hr)) / (1 - 0.5^sqrt(1 / hr))
evalue <- list(rr_3.9 = ev_rr(3.9), rr_1.8 = ev_rr(1.8),
               hr_common_0.55 = ev_rr(hr_common(0.55)), hr_common_0.80 = ev_rr(hr_common(0.80)),
               hr_rare_0.55 = ev_rr(0.55))

# 6. Multivariable Cox model of the arm with covariates (Efron ties, Wald CI)
mv <- coxph(Surv(time, status) ~ treated + karno + age + prior10 + small, data = d, control = ctl)
multivariable <- list(call = "coxph(Surv(time, status) ~ treated + karno + age + prior10 + small)",
                      coef = unname(coef(mv)["treated"]), se = unname(sqrt(diag(vcov(mv)))[1]),
                      lower = unname(exp(confint(mv))[1, 1]), upper = unname(exp(confint(mv))[1, 2]),
                      p = unname(summary(mv)$coefficients[1, "Pr(>|z|)"]))

out <- list(
  r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
  data = d[, c("time", "status", "treated", "karno", "age", "diagtime", "prior10", "small", "adeno", "large")],
  glm = list(call = "glm(treated ~ karno + age + diagtime + prior10 + small + adeno + large, family = binomial())",
             coef = as.list(coef(ps_fit)), ps = ps,
             c_statistic = {r <- rank(ps); n1 <- sum(d$treated); n0 <- nrow(d) - n1
                            (sum(r[d$treated == 1]) - n1 * (n1 + 1) / 2) / (n1 * n0)}),
  weights = list(iptw = w_iptw, ato = w_ato),
  coxph = list(call = "coxph(Surv(time, status) ~ treated, weights = w, robust = TRUE, ties = ties)",
               iptw_efron = cox_w(w_iptw, "efron"), iptw_breslow = cox_w(w_iptw, "breslow"),
               ato_efron = cox_w(w_ato, "efron"), ato_breslow = cox_w(w_ato, "breslow"),
               unweighted_efron = cox_w(rep(1, nrow(d)), "efron"),
               unweighted_breslow = cox_w(rep(1, nrow(d)), "breslow")),
  survfit = list(call = "summary(survfit(Surv(time, status) ~ treated, weights = w), times, extend = TRUE)",
                 iptw = km_w(w_iptw), ato = km_w(w_ato)),
  smd = smd,
  multivariable = multivariable,
  evalue = evalue
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/propensity.json")
