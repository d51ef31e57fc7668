# Golden values for helpers/analyses/response.py and helpers/analyses/safety.py
# (tests/test_response.py, tests/test_safety.py).
# Run from the repository root:  Rscript tests/reference/response_safety.R
# Writes tests/reference/response_safety.json.
#
# R calls mirrored:
#   binom.test(k, n)$conf.int                       Clopper-Pearson exact 95% CI of one rate
#   prop.test(k, n, correct = FALSE)$conf.int       Wilson score CI (input of Newcombe's interval)
#   prop.test(c(k1, k2), c(n1, n2), correct = FALSE)$conf.int   Wald CI of a difference
#   fisher.test(x)                                  two-sided exact P, conditional MLE odds ratio
#                                                   and its exact CI
#   chisq.test(x, correct = FALSE / TRUE)           Pearson / Yates chi-square
#
# Deliberate difference: fisher.test() finds the conditional MLE and the CI limits with
# uniroot() at its default tolerance (.Machine$double.eps^0.25, about 1e-4), so its estimate
# and limits are accurate only to about 1e-4 relative. fisher_or_tight() below is fisher.test's
# own code (R 4.2.2, stats:::fisher.test, 2 x 2 branch) with uniroot(tol = 1e-14); the tests
# compare to it at rtol 1e-6, and to the default fisher.test() output at rtol 1e-3.
suppressPackageStartupMessages(library(jsonlite))

# --- fisher.test's 2 x 2 odds-ratio code, with a tight root-finding tolerance ---------------
fisher_or_tight <- function(x, conf.level = 0.95, tol = 1e-14) {
  m <- sum(x[, 1L]); n <- sum(x[, 2L]); k <- sum(x[1L, ]); x <- x[1L, 1L]
  lo <- max(0L, k - n); hi <- min(k, m)
  support <- lo:hi
  logdc <- dhyper(support, m, n, k, log = TRUE)
  dnhyper <- function(ncp) { d <- logdc + log(ncp) * support; d <- exp(d - max(d)); d / sum(d) }
  mnhyper <- function(ncp) {
    if (ncp == 0) return(lo)
    if (ncp == Inf) return(hi)
    sum(support * dnhyper(ncp))
  }
  pnhyper <- function(q, ncp = 1, upper.tail = FALSE) {
    if (ncp == 1) return(if (upper.tail) phyper(x - 1, m, n, k, lower.tail = FALSE)
                         else phyper(x, m, n, k))
    if (ncp == 0) return(as.numeric(if (upper.tail) q <= lo else q >= lo))
    if (ncp == Inf) return(as.numeric(if (upper.tail) q <= hi else q >= hi))
    sum(dnhyper(ncp)[if (upper.tail) support >= q else support <= q])
  }
  ur <- function(f, interval) uniroot(f, interval, tol = tol)$root
  mle <- function(x) {
    if (x == lo) return(0)
    if (x == hi) return(Inf)
    mu <- mnhyper(1)
    if (mu > x) ur(function(t) mnhyper(t) - x, c(0, 1))
    else if (mu < x) 1 / ur(function(t) mnhyper(1 / t) - x, c(.Machine$double.eps, 1))
    else 1
  }
  ncp.U <- function(x, alpha) {
    if (x == hi) return(Inf)
    p <- pnhyper(x, 1)
    if (p < alpha) ur(function(t) pnhyper(x, t) - alpha, c(0, 1))
    else if (p > alpha) 1 / ur(function(t) pnhyper(x, 1 / t) - alpha, c(.Machine$double.eps, 1))
    else 1
  }
  ncp.L <- function(x, alpha) {
    if (x == lo) return(0)
    p <- pnhyper(x, 1, upper.tail = TRUE)
    if (p > alpha) ur(function(t) pnhyper(x, t, upper.tail = TRUE) - alpha, c(0, 1))
    else if (p < alpha) 1 / ur(function(t) pnhyper(x, 1 / t, upper.tail = TRUE) - alpha,
                               c(.Machine$double.eps, 1))
    else 1
  }
  alpha <- (1 - conf.level) / 2
  list(estimate = mle(x), lower = ncp.L(x, alpha), upper = ncp.U(x, alpha))
}

# JSON has no Inf: infinite limits are written as the string "Inf".
num <- function(v) if (is.infinite(v)) (if (v > 0) "Inf" else "-Inf") else v

wilson <- function(k, n) as.numeric(prop.test(k, n, correct = FALSE)$conf.int)

# Newcombe (1998) method 10: hybrid score interval for p1 - p2 from the two Wilson intervals.
newcombe <- function(k1, n1, k2, n2) {
  p1 <- k1 / n1; p2 <- k2 / n2; w1 <- wilson(k1, n1); w2 <- wilson(k2, n2)
  d <- p1 - p2
  c(d, d - sqrt((p1 - w1[1])^2 + (w2[2] - p2)^2), d + sqrt((w1[2] - p1)^2 + (p2 - w2[1])^2))
}

# One comparison of two rates: arm 1 = experimental (CMT+ICI), arm 2 = reference (CMT).
# The 2 x 2 table has rows arm 1, arm 2 and columns event, no event, so the odds ratio is the
# odds of the event with arm 1 over the odds with arm 2.
compare <- function(k1, n1, k2, n2) {
  x <- matrix(c(k1, k2, n1 - k1, n2 - k2), 2)
  ft <- fisher.test(x)
  tight <- fisher_or_tight(x)
  both_zero <- (k1 + k2 == 0) || (k1 + k2 == n1 + n2)
  pe <- if (both_zero) NULL else suppressWarnings(chisq.test(x, correct = FALSE))
  ya <- if (both_zero) NULL else suppressWarnings(chisq.test(x, correct = TRUE))
  wald <- suppressWarnings(prop.test(c(k1, k2), c(n1, n2), correct = FALSE)$conf.int)
  nc <- newcombe(k1, n1, k2, n2)
  list(
    k1 = k1, n1 = n1, k2 = k2, n2 = n2,
    binom1 = as.numeric(binom.test(k1, n1)$conf.int),
    binom2 = as.numeric(binom.test(k2, n2)$conf.int),
    wilson1 = wilson(k1, n1), wilson2 = wilson(k2, n2),
    fisher_p = ft$p.value,
    fisher_or_default = lapply(unname(c(ft$estimate, ft$conf.int)), num),
    fisher_or_tight = lapply(c(tight$estimate, tight$lower, tight$upper), num),
    pearson = if (is.null(pe)) NULL else c(unname(pe$statistic), pe$p.value),
    yates = if (is.null(ya)) NULL else c(unname(ya$statistic), ya$p.value),
    min_expected = if (is.null(pe)) NULL else min(pe$expected),
    wald_diff = c(k1 / n1 - k2 / n2, as.numeric(wald)),
    newcombe_diff = nc
  )
}

comparisons <- list(
  orr_like          = compare(20, 39, 25, 87),   # typical ORR table (Pearson, min E >= 5)
  dcr_like          = compare(33, 39, 60, 87),   # typical DCR table
  zero_responders   = compare(0, 12, 5, 15),     # an arm with no responder (OR 0, CI lower 0)
  all_responders    = compare(10, 10, 3, 12),    # an arm where everyone responds (OR Inf)
  none_in_any_arm   = compare(0, 10, 0, 12),     # no responder at all: no test, OR undefined
  yates_range       = compare(4, 39, 2, 87),     # 1 <= min E < 5, n >= 40: Yates under the paper rule
  min_expected_low  = compare(1, 39, 0, 87),     # min E < 1: Fisher under the paper rule
  ici_lower         = compare(5, 39, 30, 87)     # the experimental arm does worse (OR < 1)
)

# --- a hand-made patient-level response data set -------------------------------------------
# Missing best response (NA) counts as not evaluable (NE).
resp <- data.frame(
  patient_id = sprintf("R%02d", 1:32),
  arm = c(rep("CMT", 20), rep("CMT+ICI", 12)),
  best_response = c(
    "CR", rep("PR", 5), rep("SD", 8), rep("PD", 4), "NE", NA,       # CMT
    rep("CR", 2), rep("PR", 6), rep("SD", 2), "PD", "NE"            # CMT+ICI
  ),
  stringsAsFactors = FALSE
)
br <- ifelse(is.na(resp$best_response), "NE", resp$best_response)
rate_set <- function(events, denominator) {
  arms <- c("CMT", "CMT+ICI")
  k <- sapply(arms, function(a) sum(events & resp$arm == a & denominator))
  n <- sapply(arms, function(a) sum(resp$arm == a & denominator))
  out <- compare(k[["CMT+ICI"]], n[["CMT+ICI"]], k[["CMT"]], n[["CMT"]])
  out$categories <- NULL
  out
}
evaluable <- br != "NE"
response_data <- list(
  patients = resp,
  counts = as.list(as.data.frame.matrix(table(factor(br, levels = c("CR", "PR", "SD", "PD", "NE")),
                                               resp$arm))),
  orr_all = rate_set(br %in% c("CR", "PR"), rep(TRUE, nrow(resp))),
  dcr_all = rate_set(br %in% c("CR", "PR", "SD"), rep(TRUE, nrow(resp))),
  orr_evaluable = rate_set(br %in% c("CR", "PR"), evaluable),
  dcr_evaluable = rate_set(br %in% c("CR", "PR", "SD"), evaluable)
)

# --- a hand-made adverse-event data set ------------------------------------------------------
# 10 CMT and 6 CMT+ICI patients. S01 has three rows of one term (worst grade 3 counts once);
# S02 and S14 have no adverse event; "Hypothyroidism" occurs with CMT+ICI only; "Alopecia" with
# CMT only.
pts <- data.frame(patient_id = sprintf("S%02d", 1:16),
                  arm = c(rep("CMT", 10), rep("CMT+ICI", 6)), stringsAsFactors = FALSE)
ae <- data.frame(
  patient_id = c("S01", "S01", "S01", "S01", "S03", "S04", "S04", "S05", "S06", "S07", "S08",
                 "S09", "S10", "S03", "S05",
                 "S11", "S11", "S12", "S12", "S13", "S15", "S15", "S16", "S16", "S13"),
  term = c("Anaemia", "Anaemia", "Anaemia", "Nausea", "Anaemia", "Neutrophil count decreased",
           "Nausea", "Neutrophil count decreased", "Anaemia", "Nausea", "Alopecia",
           "Neutrophil count decreased", "Anaemia", "Alopecia", "Nausea",
           "Anaemia", "Hypothyroidism", "Neutrophil count decreased", "Hypothyroidism",
           "Anaemia", "Rash maculo-papular", "Anaemia", "Hypothyroidism", "Nausea",
           "Neutrophil count decreased"),
  grade = c(1, 3, 2, 1, 2, 4, 1, 2, 1, 2, 1, 3, 1, 2, 1,
            2, 2, 3, 1, 1, 3, 2, 2, 1, 5),
  stringsAsFactors = FALSE
)
worst <- aggregate(grade ~ patient_id + term, data = ae, FUN = max)
worst <- merge(worst, pts, by = "patient_id")
arm_n <- table(factor(pts$arm, levels = c("CMT", "CMT+ICI")))
count_row <- function(ids_by_arm) {
  # ids_by_arm: patient ids with the event; returns counts and fisher.test on (ICI, CMT) rows
  k <- sapply(c("CMT", "CMT+ICI"), function(a) sum(pts$arm[pts$patient_id %in% ids_by_arm] == a))
  x <- matrix(c(k[["CMT+ICI"]], k[["CMT"]], arm_n[["CMT+ICI"]] - k[["CMT+ICI"]],
                arm_n[["CMT"]] - k[["CMT"]]), 2)
  list(k = as.list(k), n = as.list(c(CMT = arm_n[["CMT"]], `CMT+ICI` = arm_n[["CMT+ICI"]])),
       fisher_p = fisher.test(x)$p.value)
}
terms <- sort(unique(worst$term))
safety_rows <- list(
  any_trae = count_row(unique(worst$patient_id)),
  any_grade3plus = count_row(unique(worst$patient_id[worst$grade >= 3]))
)
term_rows <- lapply(terms, function(t) {
  w <- worst[worst$term == t, ]
  list(term = t,
       any_grade = count_row(w$patient_id),
       grade3plus = count_row(w$patient_id[w$grade >= 3]),
       worst_grades = as.list(setNames(w$grade, w$patient_id)))
})
safety_data <- list(patients = pts, adverse_events = ae, overall = safety_rows, terms = term_rows)

out <- list(
  generated_by = "tests/reference/response_safety.R",
  r_version = R.version.string,
  comparisons = comparisons,
  response = response_data,
  safety = safety_data
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE),
           "tests/reference/response_safety.json")
