# Reference values of the disposition, exposure and deaths tables on a tiny hand-made cohort
# (cohort_tables_*.csv); tests/test_cohort_tables.py compares helpers.analyses.cohort with them.
# Run from the repository root: Rscript tests/reference/cohort_tables.R
library(jsonlite)
d <- "tests/reference"
p <- read.csv(file.path(d, "cohort_tables_cohort.csv"), colClasses = "character")
cy <- read.csv(file.path(d, "cohort_tables_cycles.csv"), colClasses = "character")
ae <- read.csv(file.path(d, "cohort_tables_ae.csv"), colClasses = "character")
cutoff <- as.Date("2020-12-31")
dpm <- 365.25 / 12
for (v in c("start_date", "last_followup_date", "death_date")) p[[v]] <- as.Date(ifelse(p[[v]] == "", NA, p[[v]]))
cy$cycle_date <- as.Date(cy$cycle_date)
dead <- !is.na(p$death_date)
lost <- !dead & as.numeric(cutoff - p$last_followup_date) / dpm > 3
last <- as.Date(sapply(p$patient_id, function(id) {
  x <- cy$cycle_date[cy$patient_id == id]; if (length(x)) as.character(max(x)) else NA_character_ }))
first <- as.Date(sapply(p$patient_id, function(id) {
  x <- cy$cycle_date[cy$patient_id == id]; if (length(x)) as.character(min(x)) else NA_character_ }))
ongoing <- !dead & !is.na(last) & as.numeric(cutoff - last) <= 42 & p$end_of_treatment_reason == ""
within30 <- dead & !is.na(last) & as.numeric(p$death_date - last) <= 30
grade5 <- p$patient_id %in% ae$patient_id[as.integer(ae$grade) == 5]
count_class <- function(cls) sapply(p$patient_id, function(id) sum(cy$patient_id == id & cy$agent_class == cls))
duration <- (as.numeric(last - first) + 21) / dpm
out <- list()
for (a in c("A", "B")) {
  m <- p$arm == a
  chemo <- count_class("chemo")[m]
  drugx <- count_class("drugx")[m]
  dur <- duration[m & !is.na(duration)]
  out[[a]] <- list(
    n = sum(m), dead = sum(dead[m]), lost = sum(lost[m]), in_followup = sum(!dead[m] & !lost[m]),
    evaluable = sum(p$best_response[m] != "NE"), with_ae = sum(p$patient_id[m] %in% ae$patient_id),
    ongoing = sum(ongoing[m]), within30 = sum(within30[m]), treatment_related = sum(grade5[m]),
    chemo = list(median = median(chemo), min = min(chemo), max = max(chemo), mean = mean(chemo), sd = sd(chemo)),
    drugx = list(median = median(drugx), min = min(drugx), max = max(drugx), mean = mean(drugx), sd = sd(drugx)),
    duration = list(median = median(dur), min = min(dur), max = max(dur), mean = mean(dur), sd = sd(dur)))
}
out$meta <- list(R = paste(R.version$major, R.version$minor, sep = "."))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(d, "cohort_tables.json"))
