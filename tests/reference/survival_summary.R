# Golden values of the time-to-event summary (TTET01-like), the PH test of the arm, piecewise hazard
# ratios and the follow-up summary: helpers/stats/survival.py and helpers/analyses/survival.py.
# Tested with R 4.2.2, survival 3.5-3.
#
# Run from the repository root:   Rscript tests/reference/survival_summary.R
# Writes tests/reference/survival_summary.json (committed). Inputs:
#   tests/reference/lung.csv   R's survival::lung (time in days, status 0/1, sex), written by survival.R
#   data/cohort.csv            the shipped cohort; OS and PFS derived here from the dates, independently of
#                              helpers.data.load (PFS without event censored at last_assessment_date when
#                              that column exists, else at last_followup_date)
# Per group: quantile(survfit, c(.25, .5, .75), conf.int = TRUE), range with censored extremes,
# summary(survfit, times)$surv/std.err and the between-group differences of rates (Wald CI), reverse
# Kaplan-Meier median; between groups: survdiff, coxph (Efron), cox.zph(transform = "km"),
# piecewise HRs coxph(Surv(tstart, time, status) ~ group:strata(tgroup), survSplit(cut = cuts)).
suppressPackageStartupMessages({library(survival); library(jsonlite)})
here <- "tests/reference"

summarise <- function(d, times, cuts) {
  d$group <- factor(d$group, levels = sort(unique(d$group)))
  if (!is.null(d$reference)) d$group <- relevel(d$group, ref = d$reference[1])
  lv <- levels(d$group)
  out <- list(levels = lv, times = times, cuts = cuts, groups = list())
  se_at <- list()
  for (g in lv) {
    s <- d[d$group == g, ]
    fit <- survfit(Surv(time, status) ~ 1, data = s, conf.type = "log")
    q <- quantile(fit, probs = c(0.25, 0.5, 0.75), conf.int = TRUE)
    sm <- summary(fit, times = times, extend = TRUE)
    lo <- min(s$time); hi <- max(s$time)
    rev <- survfit(Surv(time, 1 - status) ~ 1, data = s)
    out$groups[[g]] <- list(
      n = nrow(s), events = sum(s$status),
      quantiles = list(estimate = unname(q$quantile), lower = unname(q$lower), upper = unname(q$upper)),
      range = list(min = lo, max = hi, min_censored = all(s$status[s$time == lo] == 0),
                   max_censored = all(s$status[s$time == hi] == 0)),
      rates = list(surv = sm$surv, std_err = sm$std.err),
      followup_median = unname(summary(rev)$table[c("median", "0.95LCL", "0.95UCL")]))
    se_at[[g]] <- sm
  }
  a <- se_at[[lv[1]]]; b <- se_at[[lv[2]]]
  diff <- b$surv - a$surv; se <- sqrt(a$std.err^2 + b$std.err^2)
  out$rate_difference <- list(estimate = diff, se = se, lower = diff - qnorm(0.975) * se,
                              upper = diff + qnorm(0.975) * se, p = 2 * pnorm(-abs(diff / se)))
  sd <- survdiff(Surv(time, status) ~ group, data = d)
  out$logrank <- list(chisq = unname(sd$chisq), p = pchisq(sd$chisq, 1, lower.tail = FALSE))
  cx <- coxph(Surv(time, status) ~ group, data = d, ties = "efron")
  ci <- summary(cx)$conf.int
  out$cox <- list(hr = unname(ci[1, 1]), lower = unname(ci[1, 3]), upper = unname(ci[1, 4]))
  zp <- cox.zph(cx, transform = "km")
  out$ph <- list(chisq = unname(zp$table[1, "chisq"]), p = unname(zp$table[1, "p"]))
  d$x <- as.integer(d$group == lv[2])     # the other group vs the reference
  sp <- survSplit(Surv(time, status) ~ x, data = d, cut = cuts, episode = "tgroup")
  pw <- coxph(Surv(tstart, time, status) ~ x:strata(tgroup), data = sp, ties = "efron")
  pc <- summary(pw)$coefficients
  out$piecewise <- list(coef = unname(pc[, "coef"]), se = unname(pc[, "se(coef)"]), p = unname(pc[, "Pr(>|z|)"]))
  out
}

golden <- list(meta = list(R = R.version.string, survival = as.character(packageVersion("survival")),
                           script = "tests/reference/survival_summary.R"), datasets = list())
lung <- read.csv(file.path(here, "lung.csv"))
golden$datasets$lung <- summarise(data.frame(time = lung$time, status = lung$status, group = lung$sex),
                                  times = c(180, 365, 730), cuts = c(180, 365))

cohort_csv <- "data/cohort.csv"
if (file.exists(cohort_csv)) {
  co <- read.csv(cohort_csv, stringsAsFactors = FALSE, na.strings = c("", "NA"), comment.char = "#",
                 strip.white = TRUE)
  st <- as.Date(sub(".*'([0-9-]+)'.*", "\\1",
                                   grep("^cutoff_date", readLines("data/study.yaml"), value = TRUE)))
  days <- function(a, b) as.numeric(as.Date(a) - as.Date(b))
  dpm <- 30.4375
  ref <- "CMT"
  os_end <- ifelse(is.na(co$death_date), co$last_followup_date, co$death_date)
  os_months <- days(os_end, co$start_date) / dpm
  os_event <- as.integer(!is.na(co$death_date))
  prog <- as.Date(co$progression_date); death <- as.Date(co$death_date)
  first_event <- pmin(prog, death, na.rm = TRUE)
  pfs_event <- as.integer(!is.na(first_event))
  censor <- if ("last_assessment_date" %in% names(co)) co$last_assessment_date else co$last_followup_date
  pfs_end <- ifelse(is.na(first_event), as.character(censor), as.character(first_event))
  pfs_months <- days(pfs_end, co$start_date) / dpm
  by_progression <- !is.na(prog) & (is.na(death) | prog <= death)
  golden$datasets$cohort_os <- summarise(
    data.frame(time = os_months, status = os_event, group = co$arm, reference = ref),
    times = c(6, 12, 24), cuts = c(6, 12))
  golden$datasets$cohort_pfs <- summarise(
    data.frame(time = pfs_months, status = pfs_event, group = co$arm, reference = ref),
    times = c(6, 12, 24), cuts = c(6, 12))
  golden$datasets$cohort_pfs$events_by_cause <- lapply(split(data.frame(p = by_progression & pfs_event == 1,
      d = !by_progression & pfs_event == 1), co$arm), function(x) list(progression = sum(x$p), death = sum(x$d)))
  # follow-up: potential follow-up (start to cut-off), lost to follow-up (alive, last seen > 3 months
  # = 3 * 30.4375 days before the cut-off), censored OS range per arm
  potential <- days(st, co$start_date) / dpm
  lost <- os_event == 0 & days(st, co$last_followup_date) > 3 * dpm
  golden$datasets$followup <- lapply(split(data.frame(pot = potential, lost = lost, t = os_months, e = os_event),
                                            co$arm), function(x) list(
    potential_median = median(x$pot), potential_min = min(x$pot), potential_max = max(x$pot),
    lost_to_followup = sum(x$lost), alive = sum(x$e == 0),
    censored_min = min(x$t[x$e == 0]), censored_max = max(x$t[x$e == 0])))
  golden$meta$cohort_md5 <- unname(tools::md5sum(cohort_csv))
}
writeLines(toJSON(golden, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE),
           file.path(here, "survival_summary.json"))
