# Golden values for the size guard of helpers/stats/contingency.py (tests/test_contingency.py, issue 15).
# Run from the repository root:  Rscript tests/reference/exact_large.R
# Writes tests/reference/exact_large.json.
# R calls mirrored: fisher.test(x, workspace = 2e8) (exact network algorithm; the default workspace
# stops with an error on the first table) and fisher.test(x, simulate.p.value = TRUE, B = 1e5)
# (Monte Carlo exact P, (1 + #{S_sim <= S_obs}) / (B + 1)).
suppressPackageStartupMessages(library(jsonlite))

# A 5 x 2 stage table of n = 2,511 whose smallest expected count is 4.99 (the kind of table of
# issue 15; the one of the issue was not published, this one has the same size and sparsity).
five_by_two <- rbind(c(700, 480), c(300, 350), c(150, 250), c(108, 163), c(0, 10))
# A 3-level row at 100,000 patients, 80,000 / 19,990 / 10 split across arms 70 / 30.
three_level_100k <- rbind(c(56000, 24000), c(13993, 5997), c(7, 3))

one <- function(x) {
  default <- tryCatch({ fisher.test(x); "ok" }, error = function(e) conditionMessage(e))
  set.seed(20240101)
  sim <- fisher.test(x, simulate.p.value = TRUE, B = 1e5)
  list(table = x, n = sum(x),
       min_expected = min(outer(rowSums(x), colSums(x)) / sum(x)),
       exact_p = fisher.test(x, workspace = 2e8)$p.value,
       simulated_p = sim$p.value, B = 1e5,
       default_workspace = default)
}

out <- list(
  five_by_two = one(five_by_two),
  three_level_100k = one(three_level_100k),
  R = R.version.string
)
write_json(out, "tests/reference/exact_large.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)

# Pearson chi-square of a 2 x 2 row whose P is 0.04953 (issue 15: printed "0.050" beside "significant"):
# rows = levels (Female, Male), columns = arms (87 and 39 patients)
pearson_04953 <- rbind(c(28, 6), c(59, 33))
pe <- chisq.test(pearson_04953, correct = FALSE)
out$pearson_04953 <- list(table = pearson_04953, statistic = unname(pe$statistic), p = pe$p.value,
                          min_expected = min(pe$expected))
write_json(out, "tests/reference/exact_large.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
