# Reference values of the safety summary by highest grade and by action taken
# (helpers.analyses.safety.summarise_grades; tests/test_safety.py).
# Data: the 16 patients of response_safety.json (no action column) and the 6 patients of
# cohort_tables_{cohort,ae}.csv (with the optional column action).
# Run from the repository root: Rscript tests/reference/safety_grades.R
library(jsonlite)
d <- "tests/reference"
summarise <- function(pts, ae, arms) {
  ae$grade <- as.integer(ae$grade)
  worst <- aggregate(grade ~ patient_id, data = ae, FUN = max)
  sets <- list(any_grade = worst$patient_id, grade3plus = worst$patient_id[worst$grade >= 3],
               grade_3 = worst$patient_id[worst$grade == 3], grade_4 = worst$patient_id[worst$grade == 4],
               grade_5 = worst$patient_id[worst$grade == 5])
  if ("action" %in% names(ae)) {
    for (a in c("discontinued", "dose_reduced", "interrupted"))
      sets[[paste0("action_", a)]] <- unique(ae$patient_id[ae$action == a])
  }
  n <- sapply(arms, function(a) sum(pts$arm == a))
  lapply(sets, function(ids) {
    k <- sapply(arms, function(a) sum(pts$arm == a & pts$patient_id %in% ids))
    x <- cbind(k, n - k)
    list(k = as.list(k), n = as.list(n), fisher_p = fisher.test(x)$p.value)
  })
}
rs <- fromJSON(file.path(d, "response_safety.json"))$safety
big <- summarise(rs$patients, rs$adverse_events, c("CMT", "CMT+ICI"))
pts <- read.csv(file.path(d, "cohort_tables_cohort.csv"), colClasses = "character")
ae <- read.csv(file.path(d, "cohort_tables_ae.csv"), colClasses = "character")
tiny <- summarise(pts, ae, c("A", "B"))
out <- list(response_safety = big, cohort_tables = tiny,
            meta = list(R = paste(R.version$major, R.version$minor, sep = ".")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(d, "safety_grades.json"))
