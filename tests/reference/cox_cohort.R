# Sourced by cox.R when data/cohort.csv exists: golden values on the shipped synthetic cohort.
# Derivations as helpers.data.load: months = days / 30.4375; groups as data/dictionary.yaml.
coh <- read.csv(file.path(root, "data", "cohort.csv"), stringsAsFactors = FALSE, na.strings = "", comment.char = "#")
cyc <- read.csv(file.path(root, "data", "treatment_cycles.csv"), stringsAsFactors = FALSE, comment.char = "#")
dpm <- 30.4375
start <- as.Date(coh$start_date)
death <- as.Date(coh$death_date)
last <- as.Date(coh$last_followup_date)
coh$os_event <- as.integer(!is.na(death))
coh$os_months <- as.numeric(ifelse(is.na(death), last, death) - as.numeric(start)) / dpm
coh$kps_group <- factor(ifelse(coh$kps >= 70, ">= 70", "< 70"), levels = c(">= 70", "< 70"))
# Reference levels as the notebook's REFERENCE_LEVELS: relevel(x, ref = "No") etc.
coh$local_therapy_liver <- factor(coh$local_therapy_liver, levels = c("No", "Yes"))
coh$liver_met_number <- factor(coh$liver_met_number, levels = c("Solitary", "Multiple"))
cyc$cycle_month <- as.numeric(as.Date(cyc$cycle_date) - start[match(cyc$patient_id, coh$patient_id)]) / dpm
coh$chemo_cycles <- as.integer(table(factor(cyc$patient_id[cyc$agent_class == "chemotherapy"],
                                            levels = coh$patient_id)))
coh$ici_cycles <- as.integer(table(factor(cyc$patient_id[cyc$agent_class == "ICI"], levels = coh$patient_id)))

# The paper's final model: coxph(Surv(os_months, os_event) ~ kps_group + local_therapy_liver +
#   chemo_cycles + ici_cycles, ties = "efron")
fpaper <- coxph(Surv(os_months, os_event) ~ kps_group + local_therapy_liver + chemo_cycles + ici_cycles,
                data = coh, ties = "efron")
# With a missing-value covariate: coxph(... ~ liver_met_number + liver_met_max_diameter_cm) (complete cases)
fmiss <- coxph(Surv(os_months, os_event) ~ liver_met_number + liver_met_max_diameter_cm, data = coh)

# Time-varying cumulative cycle counts: coxph(Surv(start, stop, event) ~ chemo_cum + ici_cum +
#   local_therapy_liver, ties = "efron"); intervals break at each cycle date, a cycle counts from
#   its own date onward ((start, stop] holds the cycles given at or before start).
rows <- list()
for (i in seq_len(nrow(coh))) {
  id <- coh$patient_id[i]; T <- coh$os_months[i]; E <- coh$os_event[i]
  cm <- cyc$cycle_month[cyc$patient_id == id]; ca <- cyc$agent_class[cyc$patient_id == id]
  cuts <- sort(unique(c(0, cm)))
  cuts <- c(cuts[cuts < T], T)
  for (k in seq_len(length(cuts) - 1)) {
    a <- cuts[k]; b <- cuts[k + 1]
    rows[[length(rows) + 1]] <- data.frame(id = id, start = a, stop = b, event = as.integer(E == 1 && b == T),
      chemo_cum = sum(ca == "chemotherapy" & cm <= a), ici_cum = sum(ca == "ICI" & cm <= a),
      local_therapy_liver = coh$local_therapy_liver[i])
  }
}
long <- do.call(rbind, rows)
ftv <- coxph(Surv(start, stop, event) ~ chemo_cum + ici_cum + local_therapy_liver, data = long, ties = "efron")

# Landmark at 3 months: alive at 3 months, cycles up to month 3, time from the landmark
lm <- coh[coh$os_months > 3, ]
early <- cyc[cyc$cycle_month <= 3, ]
lm$chemo_cycles <- as.integer(table(factor(early$patient_id[early$agent_class == "chemotherapy"], levels = lm$patient_id)))
lm$ici_cycles <- as.integer(table(factor(early$patient_id[early$agent_class == "ICI"], levels = lm$patient_id)))
lm$os_months <- lm$os_months - 3
flm <- coxph(Surv(os_months, os_event) ~ local_therapy_liver + chemo_cycles + ici_cycles, data = lm, ties = "efron")

out$cohort <- list(
  paper_model = coxinfo(fpaper),
  paper_model_zph = zphinfo(fpaper),
  missing_model = coxinfo(fmiss),
  time_varying = c(coxinfo(ftv), list(intervals = nrow(long))),
  landmark3 = coxinfo(flm)
)
