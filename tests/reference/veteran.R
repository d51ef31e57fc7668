# The veteran fixture and its golden values (tests/test_veteran.py).
# Run from the project root:  Rscript tests/reference/veteran.R
# Writes tests/fixtures/veteran/cohort.csv (R's survival::veteran in the data contract: one row per patient,
# dates from a fixed start 2000-01-01 + survival time in days) and tests/reference/veteran.json.
# The fixture's study.yaml and dictionary.yaml are written by hand (tests/fixtures/veteran/).
# Time unit: months = days / 30.4375 (365.25 / 12), as the loader derives them.
# R calls mirrored: survfit(Surv(months, status) ~ arm) (conf.type "log"), summary(fit, times, extend = TRUE),
# survdiff(Surv(months, status) ~ arm), coxph(Surv(months, status) ~ arm) (Efron ties),
# coxph(Surv(months, status) ~ arm + celltype + karno + age + prior), cox.zph(fit, transform = "km").
suppressPackageStartupMessages({library(survival); library(jsonlite)})
options(digits = 15)
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
root <- normalizePath(file.path(here, "..", ".."))
fixture <- file.path(root, "tests", "fixtures", "veteran")
dir.create(fixture, showWarnings = FALSE, recursive = TRUE)

v <- survival::veteran
start <- as.Date("2000-01-01")
cohort <- data.frame(
  patient_id = sprintf("V-%03d", seq_len(nrow(v))),
  arm = ifelse(v$trt == 1, "standard", "test"),
  start_date = format(start),
  last_followup_date = format(start + v$time),
  death_date = ifelse(v$status == 1, format(start + v$time), ""),
  celltype = as.character(v$celltype),
  karno = v$karno,
  age = v$age,
  prior = ifelse(v$prior == 10, "yes", "no"),
  diagtime = v$diagtime,
  stringsAsFactors = FALSE)
write.csv(cohort, file.path(fixture, "cohort.csv"), row.names = FALSE, quote = FALSE)

d <- data.frame(months = v$time / 30.4375, status = v$status,
                arm = factor(cohort$arm, levels = c("standard", "test")),
                celltype = factor(as.character(v$celltype), levels = c("squamous", "smallcell", "adeno", "large")),
                karno = v$karno, age = v$age, prior = factor(cohort$prior, levels = c("no", "yes")))

# ---- Kaplan-Meier by arm
times <- c(3, 6, 12)
km <- list()
for (a in levels(d$arm)) {
  fit <- survfit(Surv(months, status) ~ 1, data = d[d$arm == a, ], conf.type = "log")
  tab <- summary(fit)$table
  s <- summary(fit, times = times, extend = TRUE)
  km[[a]] <- list(n = unname(tab["records"]), events = unname(tab["events"]),
                  median = unname(tab["median"]), median_lower = unname(tab["0.95LCL"]),
                  median_upper = unname(tab["0.95UCL"]), times = times, surv = s$surv,
                  lower = s$lower, upper = s$upper)
}

# ---- log-rank
sd <- survdiff(Surv(months, status) ~ arm, data = d)
logrank <- list(chisq = sd$chisq, df = length(sd$n) - 1, p = pchisq(sd$chisq, length(sd$n) - 1, lower.tail = FALSE))

# ---- Cox: arm only
uni <- coxph(Surv(months, status) ~ arm, data = d, ties = "efron")
su <- summary(uni)
cox_arm <- list(coef = unname(coef(uni)), se = unname(sqrt(diag(vcov(uni)))), hr = unname(exp(coef(uni))),
                lower = unname(su$conf.int[, "lower .95"]), upper = unname(su$conf.int[, "upper .95"]),
                wald_p = unname(su$coefficients[, "Pr(>|z|)"]), lr_chisq = unname(su$logtest["test"]),
                lr_p = unname(su$logtest["pvalue"]), loglik = uni$loglik)
zph <- cox.zph(uni, transform = "km")
cox_arm$zph_chisq <- unname(zph$table["arm", "chisq"])
cox_arm$zph_p <- unname(zph$table["arm", "p"])

# ---- Cox: arm + cell type + Karnofsky score + age + prior therapy
multi <- coxph(Surv(months, status) ~ arm + celltype + karno + age + prior, data = d, ties = "efron")
cox_multi <- list(terms = names(coef(multi)), coef = unname(coef(multi)),
                  se = unname(sqrt(diag(vcov(multi)))), loglik = multi$loglik)

out <- list(r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
            days_per_month = 30.4375, n = nrow(d), km = km, logrank = logrank, cox_arm = cox_arm,
            cox_multivariable = cox_multi)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "veteran.json"))
