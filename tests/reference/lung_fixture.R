# The lung fixture (tests/test_lung.py): R's survival::lung (NCCTG advanced lung cancer, Loprinzi 1994) as a
# study folder with missing covariate values, including a categorical one.
# Run from the project root:  Rscript tests/reference/lung_fixture.R
# Writes tests/fixtures/lung/cohort.csv: one row per patient, arm = sex (1 male, 2 female; an observational
# comparison), dates from a fixed start 2000-01-01 + survival time in days (status 2 = death), covariates
# age, ecog (ph.ecog: 0-3, missing allowed), ph.karno and wt.loss (missing allowed), missing cells "NA".
# The fixture's study.yaml and dictionary.yaml are written by hand (tests/fixtures/lung/).
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
root <- normalizePath(file.path(here, "..", ".."))
fixture <- file.path(root, "tests", "fixtures", "lung")
dir.create(fixture, showWarnings = FALSE, recursive = TRUE)

l <- survival::lung
start <- as.Date("2000-01-01")
cohort <- data.frame(
  patient_id = sprintf("L-%03d", seq_len(nrow(l))),
  arm = ifelse(l$sex == 1, "male", "female"),
  start_date = format(start),
  last_followup_date = format(start + l$time),
  death_date = ifelse(l$status == 2, format(start + l$time), "NA"),
  age = l$age,
  ecog = l$ph.ecog,
  ph.karno = l$ph.karno,
  wt.loss = l$wt.loss,
  stringsAsFactors = FALSE)
write.csv(cohort, file.path(fixture, "cohort.csv"), row.names = FALSE, quote = FALSE, na = "NA")
