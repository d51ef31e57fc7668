# Golden values for helpers.stats.cox.fit_ph_remedy: stratified Cox models with x * log(t) terms.
# Run from the repository root: Rscript tests/reference/ph_remedy.R  (writes ph_remedy.json)
# R's tt() expands the data at every event time, so these are the exact models.
suppressPackageStartupMessages({library(survival); library(jsonlite)})
root <- getwd()
info <- function(fit) list(term = names(coef(fit)), coef = unname(coef(fit)),
                           se = unname(sqrt(diag(vcov(fit)))), loglik = fit$loglik[2])
out <- list(R = R.version.string, survival = as.character(packageVersion("survival")))

lung <- read.csv(file.path(root, "tests", "reference", "cox_lung.csv"))
lung <- lung[!is.na(lung$ph_ecog), ]
# age (numeric, time interaction) + ph_ecog, stratified by sex
f1 <- coxph(Surv(time, status) ~ age + ph_ecog + tt(age) + strata(sex), data = lung,
            tt = function(x, t, ...) x * log(t), ties = "efron")
out$lung <- info(f1)
# strata only (no numeric term)
f2 <- coxph(Surv(time, status) ~ age + ph_ecog + strata(sex), data = lung, ties = "efron")
out$lung_strata <- info(f2)

if (file.exists(file.path(root, "data", "cohort.csv"))) {
  # derivations as tests/reference/cox_cohort.R (helpers.data.load: months = days / 30.4375)
  coh <- read.csv(file.path(root, "data", "cohort.csv"), stringsAsFactors = FALSE, na.strings = "", comment.char = "#")
  cyc <- read.csv(file.path(root, "data", "treatment_cycles.csv"), stringsAsFactors = FALSE, comment.char = "#")
  start <- as.Date(coh$start_date)
  death <- as.Date(coh$death_date)
  last <- as.Date(coh$last_followup_date)
  coh$os_event <- as.integer(!is.na(death))
  coh$os_months <- as.numeric(ifelse(is.na(death), last, death) - as.numeric(start)) / 30.4375
  coh$kps_group <- factor(ifelse(coh$kps >= 70, ">= 70", "< 70"), levels = c(">= 70", "< 70"))
  coh$local_therapy_liver <- factor(coh$local_therapy_liver, levels = c("No", "Yes"))
  coh$chemo_cycles <- as.integer(table(factor(cyc$patient_id[cyc$agent_class == "chemotherapy"],
                                              levels = coh$patient_id)))
  coh$ici_cycles <- as.integer(table(factor(cyc$patient_id[cyc$agent_class == "ICI"], levels = coh$patient_id)))
  coh$arm <- factor(coh$arm, levels = c("CMT", "CMT+ICI"))
  f3 <- coxph(Surv(os_months, os_event) ~ kps_group + chemo_cycles + ici_cycles + tt(chemo_cycles) +
                tt(ici_cycles) + strata(arm) + strata(local_therapy_liver), data = coh,
              tt = function(x, t, ...) x * log(t), ties = "efron")
  out$cohort <- info(f3)
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path(root, "tests", "reference", "ph_remedy.json"))
