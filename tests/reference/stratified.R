# Golden values for helpers/stats/stratified.py and helpers/analyses/subgroups.py
# (tests/test_stratified.py, tests/test_subgroups.py).
# Run from the project root:  Rscript tests/reference/stratified.R
# R 4.2.2, survival 3.5-3, jsonlite. Data: survival::veteran (137 patients; arm = trt, 2 = test
# chemotherapy = "experimental"), copied into the JSON so the tests need no R. Case "sparse": the test arm
# of cell type "large" removed, so one stratum (and one subgroup level) holds one arm only.
suppressPackageStartupMessages({library(survival); library(jsonlite)})

d <- survival::veteran
d$treated <- as.integer(d$trt == 2)
d$celltype <- as.character(d$celltype)
d$prior <- ifelse(d$prior == 10, "yes", "no")
d$long <- as.integer(d$time > 90)          # a binary outcome for the CMH analysis
d$agegrp <- ifelse(d$age > 60, "old", "young")
sparse <- d[!(d$celltype == "large" & d$treated == 1), ]
ctl <- coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 100)

logrank <- function(dat, f) {
  s <- survdiff(f, data = dat)
  list(chisq = unname(s$chisq), p = pchisq(s$chisq, 1, lower.tail = FALSE),
       observed_treated = unname(sum(matrix(s$obs, nrow = 2)[2, ])),
       expected_treated = unname(sum(matrix(s$exp, nrow = 2)[2, ])))
}
cox <- function(dat, f) {
  fit <- coxph(f, data = dat, ties = "efron", control = ctl)
  s <- summary(fit)
  list(hr = unname(exp(coef(fit))[1]), lower = unname(s$conf.int[1, 3]), upper = unname(s$conf.int[1, 4]),
       coef = unname(coef(fit)[1]), se = unname(sqrt(diag(fit$var))[1]), p_wald = unname(s$coefficients[1, 5]),
       lr_chisq = unname(s$logtest[1]), lr_p = unname(s$logtest[3]))
}
cmh <- function(dat, correct = TRUE) {
  tab <- table(factor(dat$treated, levels = c(1, 0)), factor(dat$long, levels = c(1, 0)), dat$stratum)
  keep <- apply(tab, 3, function(t) all(rowSums(t) > 0))
  m <- mantelhaen.test(tab[, , keep, drop = FALSE], correct = correct)
  # Mantel-Haenszel risk difference, Greenland-Robins (1985) variance (no base R function)
  t <- tab[, , keep, drop = FALSE]
  a <- t[1, 1, ]; n1 <- a + t[1, 2, ]; cc <- t[2, 1, ]; n0 <- cc + t[2, 2, ]; N <- n1 + n0
  w <- n1 * n0 / N; p1 <- a / n1; p0 <- cc / n0
  rd <- sum(w * (p1 - p0)) / sum(w)
  se <- sqrt(sum(w^2 * (p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0))) / sum(w)
  list(or = unname(m$estimate), or_lower = m$conf.int[1], or_upper = m$conf.int[2],
       chisq = unname(m$statistic), p = m$p.value, rd = rd, rd_lower = rd - qnorm(0.975) * se,
       rd_upper = rd + qnorm(0.975) * se, rd_p = 2 * pnorm(-abs(rd / se)), n_strata = sum(keep))
}
interaction <- function(dat, v) {
  f0 <- coxph(as.formula(paste("Surv(time, status) ~ treated +", v)), data = dat, ties = "efron", control = ctl)
  f1 <- coxph(as.formula(paste("Surv(time, status) ~ treated *", v)), data = dat, ties = "efron", control = ctl)
  a <- anova(f0, f1)
  list(chisq = a$Chisq[2], df = a$Df[2], p = a[["Pr(>|Chi|)"]][2])
}
within <- function(dat, v) {
  lapply(split(dat, dat[[v]]), function(x) {
    if (length(unique(x$treated)) < 2) return(NULL)
    cox(x, Surv(time, status) ~ treated)
  })
}

out <- list(data = d[, c("time", "status", "treated", "celltype", "prior", "long", "agegrp")])
for (case in c("full", "sparse")) {
  dat <- if (case == "full") d else sparse
  r <- list()
  r$logrank_unstratified <- logrank(dat, Surv(time, status) ~ treated)
  r$logrank_celltype <- logrank(dat, Surv(time, status) ~ treated + strata(celltype))
  r$logrank_celltype_prior <- logrank(dat, Surv(time, status) ~ treated + strata(celltype, prior))
  r$cox_unstratified <- cox(dat, Surv(time, status) ~ treated)
  r$cox_celltype <- cox(dat, Surv(time, status) ~ treated + strata(celltype))
  r$cox_celltype_prior <- cox(dat, Surv(time, status) ~ treated + strata(celltype, prior))
  dat$stratum <- dat$celltype
  r$cmh_celltype <- cmh(dat)
  r$cmh_celltype_uncorrected <- cmh(dat, correct = FALSE)
  dat$stratum <- paste(dat$celltype, dat$prior)
  r$cmh_celltype_prior <- cmh(dat)
  r$interaction_celltype <- interaction(dat, "celltype")
  r$interaction_prior <- interaction(dat, "prior")
  r$interaction_agegrp <- interaction(dat, "agegrp")
  r$within_celltype <- within(dat, "celltype")
  r$within_prior <- within(dat, "prior")
  out[[case]] <- r
}
out$R <- paste(R.version$major, R.version$minor, sep = ".")
out$survival <- as.character(packageVersion("survival"))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           "tests/reference/stratified.json")
