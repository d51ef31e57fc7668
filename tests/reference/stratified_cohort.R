# Golden values of the stratified and subgroup analyses on the shipped synthetic cohort
# (tests/test_stratified.py, tests/test_subgroups.py).
# Run from the project root:  Rscript tests/reference/stratified_cohort.R
# R 4.2.2, survival 3.5-3, jsonlite. Derivations as helpers.data.load: months = days / 30.4375; groups as
# data/dictionary.yaml; strata as data/analysis.yaml (start year <= 2020 vs later). The derived columns are
# copied into the JSON, so the tests check the statistics on these data even after the cohort changes.
suppressPackageStartupMessages({library(survival); library(jsonlite)})
coh <- read.csv(file.path("data", "cohort.csv"), stringsAsFactors = FALSE, na.strings = "", comment.char = "#")
dpm <- 30.4375
start <- as.Date(coh$start_date); death <- as.Date(coh$death_date); last <- as.Date(coh$last_followup_date)
d <- data.frame(os_event = as.integer(!is.na(death)),
                os_months = as.numeric(ifelse(is.na(death), last, death) - as.numeric(start)) / dpm,
                treated = as.integer(coh$arm == "CMT+ICI"),
                start_year = as.integer(format(start, "%Y")),
                best_response = ifelse(is.na(coh$best_response), "NE", coh$best_response),
                sex = coh$sex, histology = coh$histology,
                age_group = ifelse(coh$age > 60, "> 60", "<= 60"),
                kps_group = ifelse(coh$kps >= 70, ">= 70", "< 70"), stringsAsFactors = FALSE)
d$era <- ifelse(d$start_year <= 2020, "early", "late")
d$orr <- as.integer(d$best_response %in% c("CR", "PR"))
d$dcr <- as.integer(d$best_response %in% c("CR", "PR", "SD"))
ctl <- coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 100)

out <- list(data = d)
s <- survdiff(Surv(os_months, os_event) ~ treated + strata(era), data = d)
out$logrank_era <- list(chisq = unname(s$chisq), p = pchisq(s$chisq, 1, lower.tail = FALSE))
f <- coxph(Surv(os_months, os_event) ~ treated + strata(era), data = d, ties = "efron", control = ctl)
out$cox_era <- list(hr = unname(exp(coef(f))), lower = summary(f)$conf.int[1, 3], upper = summary(f)$conf.int[1, 4])
for (y in c("orr", "dcr")) {
  m <- mantelhaen.test(table(factor(d$treated, levels = c(1, 0)), factor(d[[y]], levels = c(1, 0)), d$era))
  out[[paste0("cmh_", y)]] <- list(or = unname(m$estimate), lower = m$conf.int[1], upper = m$conf.int[2],
                                   chisq = unname(m$statistic), p = m$p.value)
}
for (v in c("sex", "histology", "age_group", "kps_group")) {
  f0 <- coxph(as.formula(paste("Surv(os_months, os_event) ~ treated +", v)), data = d, control = ctl)
  f1 <- coxph(as.formula(paste("Surv(os_months, os_event) ~ treated *", v)), data = d, control = ctl)
  a <- anova(f0, f1)
  out[[paste0("interaction_", v)]] <- list(chisq = a$Chisq[2], df = a$Df[2], p = a[["Pr(>|Chi|)"]][2])
}
out$R <- paste(R.version$major, R.version$minor, sep = ".")
out$survival <- as.character(packageVersion("survival"))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           "tests/reference/stratified_cohort.json")
