# Golden values of Table 1 for the veteran fixture (tests/fixtures/veteran, R's survival::veteran).
# Run from the repository root: Rscript tests/reference/baseline_veteran.R
# Writes tests/reference/baseline_veteran.json, read by tests/test_baseline.py.
library(jsonlite)
d <- read.csv("tests/fixtures/veteran/cohort.csv", stringsAsFactors = FALSE)
d$arm <- factor(d$arm, levels = c("standard", "test"))
cat_test <- function(x) {
  tab <- table(factor(x), d$arm)
  t <- suppressWarnings(chisq.test(tab, correct = FALSE))
  list(table = unclass(tab), statistic = unname(t$statistic), df = unname(t$parameter), p = t$p.value,
       min_expected = min(t$expected))
}
cont_test <- function(x) {
  w <- suppressWarnings(wilcox.test(x[d$arm == "standard"], x[d$arm == "test"]))
  s <- function(v) list(n = length(v), median = median(v), q1 = unname(quantile(v, 0.25)),
                        q3 = unname(quantile(v, 0.75)), mean = mean(v), sd = sd(v))
  list(W = unname(w$statistic), p = w$p.value,
       standard = s(x[d$arm == "standard"]), test = s(x[d$arm == "test"]))
}
out <- list(
  R = R.version.string,
  celltype = cat_test(d$celltype),   # chisq.test(table(celltype, arm), correct = FALSE)
  prior = cat_test(d$prior),
  karno = cont_test(d$karno),        # wilcox.test(x, y) default
  age = cont_test(d$age),
  diagtime = cont_test(d$diagtime)
)
write_json(out, "tests/reference/baseline_veteran.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
