# Golden values for helpers/stats/survival.py, from R's survival package (tested with R 4.2.2, survival 3.5-3).
#
# Run from the repository root:   Rscript tests/reference/survival.R
# Writes tests/reference/survival.json (committed). Inputs:
#   tests/reference/lung.csv               R's survival::lung, exported here (time in days, status 0/1)
#   tests/reference/survival_examples.csv  small hand-checkable examples (dataset, time, status, group)
#   data/cohort.csv                        the shipped cohort, if present; OS and PFS are derived here
#                                          from the dates, independently of helpers.data.load (PFS
#                                          censored at last_assessment_date when that column exists)
# For every dataset and group: survfit(conf.type = "log" and "log-log") curves, summary(fit, times),
# medians with CIs (print.survfit / survmean), RMST at tau with se (print(fit, rmean = tau)), reverse
# Kaplan-Meier median follow-up; between groups: survdiff and coxph (Efron ties).
suppressPackageStartupMessages({library(survival); library(jsonlite)})

here <- "tests/reference"
lung_csv <- file.path(here, "lung.csv")
lung_out <- data.frame(time = survival::lung$time, status = survival::lung$status - 1L,
                       sex = ifelse(survival::lung$sex == 1, "Male", "Female"), age = survival::lung$age)
write.csv(lung_out, lung_csv, row.names = FALSE)

one_curve <- function(time, status, times, tau) {
  fit_log <- survfit(Surv(time, status) ~ 1, conf.type = "log")
  fit_ll <- survfit(Surv(time, status) ~ 1, conf.type = "log-log")
  tt <- times[times <= max(time)]
  s_log <- summary(fit_log, times = tt)
  s_ll <- summary(fit_ll, times = tt)
  tab_log <- summary(fit_log)$table
  tab_ll <- summary(fit_ll)$table
  rm <- summary(fit_log, rmean = tau)$table
  rev_fit <- survfit(Surv(time, 1 - status) ~ 1)
  list(
    n = length(time), events = sum(status),
    curve = list(time = fit_log$time, n_risk = fit_log$n.risk, n_event = fit_log$n.event,
                 surv = fit_log$surv, std_err = fit_log$std.err,
                 lower_log = fit_log$lower, upper_log = fit_log$upper,
                 lower_loglog = fit_ll$lower, upper_loglog = fit_ll$upper),
    at = list(times = s_log$time, n_risk = s_log$n.risk, surv = s_log$surv,
              lower_log = s_log$lower, upper_log = s_log$upper,
              lower_loglog = s_ll$lower, upper_loglog = s_ll$upper),
    median_log = unname(tab_log[c("median", "0.95LCL", "0.95UCL")]),
    median_loglog = unname(tab_ll[c("median", "0.95LCL", "0.95UCL")]),
    rmst = list(tau = tau, estimate = unname(rm["rmean"]), se = unname(rm["se(rmean)"])),
    followup_median = unname(summary(rev_fit)$table[c("median", "0.95LCL", "0.95UCL")])
  )
}

describe <- function(d, times, tau) {
  out <- list(times = times, tau = tau, groups = list())
  groups <- if ("group" %in% names(d)) sort(unique(d$group)) else character(0)
  out$overall <- one_curve(d$time, d$status, times, tau)
  for (g in groups) {
    s <- d[d$group == g, ]
    out$groups[[g]] <- one_curve(s$time, s$status, times, tau)
  }
  if (length(groups) == 2) {
    d$group <- factor(d$group, levels = groups)
    sd <- survdiff(Surv(time, status) ~ group, data = d)
    out$logrank <- list(chisq = unname(sd$chisq), df = length(sd$n) - 1,
                        p = pchisq(sd$chisq, length(sd$n) - 1, lower.tail = FALSE))
    if (all(tapply(d$status, d$group, sum) > 0)) {
      cx <- coxph(Surv(time, status) ~ group, data = d, ties = "efron")
      sm <- summary(cx)
      out$cox <- list(reference = groups[1], coef = unname(coef(cx)), se = unname(sqrt(diag(vcov(cx)))),
                      hr = unname(sm$conf.int[1, "exp(coef)"]),
                      lower = unname(sm$conf.int[1, "lower .95"]), upper = unname(sm$conf.int[1, "upper .95"]),
                      wald_p = unname(sm$coefficients[1, "Pr(>|z|)"]),
                      lr_chisq = unname(sm$logtest["test"]), lr_p = unname(sm$logtest["pvalue"]),
                      loglik = unname(cx$loglik))
    }
  }
  out
}

lung <- read.csv(lung_csv)
ex <- read.csv(file.path(here, "survival_examples.csv"), stringsAsFactors = FALSE)
ex_sets <- split(ex[, c("time", "status", "group")], ex$dataset)

golden <- list(
  meta = list(R = R.version.string, survival = as.character(packageVersion("survival")),
              script = "tests/reference/survival.R"),
  datasets = list()
)
golden$datasets$lung <- describe(data.frame(time = lung$time, status = lung$status, group = lung$sex),
                                 times = c(100, 200, 365, 500, 730, 1000), tau = 730)
spec <- list(
  camis = list(times = c(50, 80, 87, 100, 118), tau = 100),
  six_events = list(times = c(0.5, 2, 3, 3.5, 4, 6), tau = 5),
  ties = list(times = c(1, 2, 4, 6, 9), tau = 8),
  no_events_arm = list(times = c(2, 5, 8), tau = 8),
  single_patient_arm = list(times = c(2, 5, 8), tau = 6),
  all_censored = list(times = c(1, 3, 5), tau = 4)
)
for (name in names(spec)) {
  d <- ex_sets[[name]]
  if (all(d$group == "")) d$group <- NULL
  golden$datasets[[name]] <- describe(d, spec[[name]]$times, spec[[name]]$tau)
}

cohort_csv <- "data/cohort.csv"
if (file.exists(cohort_csv)) {
  co <- read.csv(cohort_csv, stringsAsFactors = FALSE, na.strings = c("", "NA"), comment.char = "#",
                 strip.white = TRUE)
  days <- function(a, b) as.numeric(as.Date(a) - as.Date(b))
  dpm <- 30.4375
  os_end <- ifelse(is.na(co$death_date), co$last_followup_date, co$death_date)
  os_months <- days(os_end, co$start_date) / dpm
  os_event <- as.integer(!is.na(co$death_date))
  prog <- as.Date(co$progression_date); death <- as.Date(co$death_date)
  first_event <- pmin(prog, death, na.rm = TRUE)
  pfs_event <- as.integer(!is.na(first_event))
  # PFS without progression or death: censored at the last tumour assessment when the column exists
  censor <- if ("last_assessment_date" %in% names(co)) co$last_assessment_date else co$last_followup_date
  pfs_end <- ifelse(is.na(first_event), as.character(censor), as.character(first_event))
  pfs_months <- days(pfs_end, co$start_date) / dpm
  golden$datasets$cohort_os <- describe(data.frame(time = os_months, status = os_event, group = co$arm),
                                        times = c(6, 12, 24), tau = 24)
  golden$datasets$cohort_pfs <- describe(data.frame(time = pfs_months, status = pfs_event, group = co$arm),
                                         times = c(6, 12, 24), tau = 24)
  golden$meta$cohort_md5 <- unname(tools::md5sum(cohort_csv))
  golden$meta$cohort_n <- nrow(co)
}

writeLines(toJSON(golden, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE),
           file.path(here, "survival.json"))
