# Golden values for helpers/stats/contingency.py (tests/test_contingency.py).
# Run from the repository root:  Rscript tests/reference/contingency.R
# Writes tests/reference/contingency.json.
# R calls mirrored: chisq.test(x, correct = FALSE), chisq.test(x, correct = TRUE),
# chisq.test(x)$expected, fisher.test(x), wilcox.test(x, y) (exact network algorithm for r x c; two-sided,
# relErr = 1 + 1e-7). The SPSS Fisher-Freeman-Halton statistic has no R function; it is
# evaluated here from its formula -2 log(gamma * P_obs) as an independent implementation.
suppressPackageStartupMessages(library(jsonlite))

# Table 1 of Dai et al. 2026 (rows = levels, columns = CMT, CMT+ICI), from published.yaml.
# Histology: the arm cells that reproduce the printed 2.098 / 0.321 and add up to the total
# column (111 / 3 / 12): CMT 74 / 3 / 10, CMT+ICI 37 / 0 / 2.
published <- list(
  age            = rbind(c(39, 20), c(48, 19)),
  sex            = rbind(c(83, 36), c(4, 3)),
  underlying     = rbind(c(30, 13), c(57, 26)),
  symptoms       = rbind(c(74, 32), c(13, 7)),
  kps            = rbind(c(87, 37), c(0, 2)),
  histology      = rbind(c(74, 37), c(3, 0), c(10, 2)),
  location       = rbind(c(3, 1), c(32, 19), c(52, 19)),
  grade          = rbind(c(5, 1), c(34, 12), c(48, 26)),
  t_stage        = rbind(c(10, 7), c(77, 32)),
  n_stage        = rbind(c(11, 4), c(76, 35)),
  synchronous    = rbind(c(41, 21), c(46, 18)),
  distant_ln     = rbind(c(36, 17), c(51, 22)),
  surgery        = rbind(c(37, 15), c(50, 24))
)

# Further tables exercising the enumeration (2 x 2 R examples, r x 2 up to 6 rows with
# n = 126, 2 x c, and general r x c).
extra <- list(
  tea_tasting    = rbind(c(3, 1), c(1, 3)),                # ?fisher.test TeaTasting
  convictions    = rbind(c(2, 10), c(15, 3)),              # ?fisher.test Convictions
  six_by_two     = rbind(c(30, 10), c(20, 12), c(15, 6), c(12, 5), c(6, 4), c(4, 2)),
  five_by_two    = rbind(c(40, 10), c(20, 15), c(15, 9), c(8, 4), c(4, 1)),
  two_by_four    = rbind(c(5, 8, 2, 1), c(10, 3, 6, 4)),
  three_by_three = rbind(c(3, 1, 4), c(2, 6, 1), c(5, 2, 3)),
  four_by_three  = rbind(c(2, 3, 1), c(4, 1, 2), c(0, 3, 3), c(3, 2, 1)),
  zero_cell_2x2  = rbind(c(20, 0), c(15, 10)),
  large_2x2      = rbind(c(60, 40), c(45, 55))
)

lhyper <- function(x) {
  r <- rowSums(x); cc <- colSums(x); n <- sum(x)
  sum(lfactorial(r)) + sum(lfactorial(cc)) - lfactorial(n) - sum(lfactorial(x))
}
ffh_stat <- function(x) {
  R <- nrow(x); C <- ncol(x); n <- sum(x)
  lg <- (R - 1) * (C - 1) / 2 * log(2 * pi) - (R * C - 1) / 2 * log(n) +
    (C - 1) / 2 * sum(log(rowSums(x))) + (R - 1) / 2 * sum(log(colSums(x)))
  -2 * (lg + lhyper(x))
}

one <- function(x) {
  pe <- suppressWarnings(chisq.test(x, correct = FALSE))
  ya <- suppressWarnings(chisq.test(x, correct = TRUE))
  fi <- fisher.test(x, workspace = 2e8)
  list(
    table = x,
    min_expected = min(pe$expected),
    pearson = list(statistic = unname(pe$statistic), df = unname(pe$parameter),
                   p = pe$p.value),
    yates = list(statistic = unname(ya$statistic), df = unname(ya$parameter),
                 p = ya$p.value),
    fisher_p = fi$p.value,
    ffh_statistic = ffh_stat(x)
  )
}

# Wilcoxon rank-sum (Table 1 continuous rows): wilcox.test(x, y) defaults (exact when both
# groups < 50 and no ties, else normal approximation with continuity and tie correction).
rank_sum <- list(
  exact_small = list(x = c(1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30),
                     y = c(0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29)[-c(5, 9)]),
  ties_small  = list(x = c(2.1, 3.0, 3.0, 4.2, 5.5, 2.1, 6.0),
                     y = c(1.0, 2.1, 3.0, 1.5, 2.2, 2.9)),
  large       = list(x = round(exp(seq(0.1, 2.5, length.out = 60)), 1),
                     y = round(exp(seq(0.3, 2.9, length.out = 35)), 1))
)
rank_sum <- lapply(rank_sum, function(d) {
  w <- suppressWarnings(wilcox.test(d$x, d$y))
  c(d, list(W = unname(w$statistic), p = w$p.value))
})

out <- list(
  r_version = R.version.string,
  rank_sum = rank_sum,
  calls = "chisq.test(x, correct=FALSE); chisq.test(x, correct=TRUE); fisher.test(x)",
  published = lapply(published, one),
  extra = lapply(extra, one)
)
write_json(out, "tests/reference/contingency.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE, matrix = "rowmajor")
