# Golden values for helpers.analyses.prognostic: Harrell's bootstrap optimism of the C-index
# (validate_concordance), predicted survival of a Cox model (baseline_cumulative_hazard) and the Cox
# model of a cohort with no death in one arm (issue 15).
# Run from the repository root: Rscript tests/reference/cox_validate.R  (writes cox_validate.json)
# Needs rms (Debian/Ubuntu: apt-get install r-cran-rms).
suppressPackageStartupMessages({library(survival); library(rms); library(jsonlite)})
root <- getwd()
out <- list(R = R.version.string, survival = as.character(packageVersion("survival")),
            rms = as.character(packageVersion("rms")))

vet <- survival::veteran
vet$celltype <- factor(vet$celltype, levels = c("squamous", "smallcell", "adeno", "large"))
n <- nrow(vet)
B <- 200
seed <- 20260115

# 1. Fixed model: rms::validate (Dxy; C = (Dxy + 1) / 2). The bootstrap draws of predab.resample are
#    sample(n, replace = TRUE), one per replicate, in order; the same draws are written out so that the
#    Python code can reuse them, and checked below by redoing the optimism by hand.
f <- cph(Surv(time, status) ~ karno + celltype + age + diagtime + prior + trt, data = vet, x = TRUE, y = TRUE)
set.seed(seed)
v <- rms::validate(f, B = B)
set.seed(seed)
idx <- t(sapply(seq_len(B), function(i) sample(n, replace = TRUE)))
cidx <- function(time, status, lp) {
  k <- concordance(Surv(time, status) ~ lp, reverse = TRUE)
  unname(k$concordance)
}
formula_fixed <- Surv(time, status) ~ karno + celltype + age + diagtime + prior + trt
lp_of <- function(fit, data) {
  b <- coef(fit); b[is.na(b)] <- 0
  X <- model.matrix(formula_fixed, data)[, -1, drop = FALSE]
  drop(X[, names(b), drop = FALSE] %*% b)
}
opt <- sapply(seq_len(B), function(i) {
  d <- vet[idx[i, ], ]
  fb <- coxph(formula_fixed, data = d)
  cidx(d$time, d$status, lp_of(fb, d)) - cidx(vet$time, vet$status, lp_of(fb, vet))
})
fa <- coxph(formula_fixed, data = vet)
apparent <- cidx(vet$time, vet$status, lp_of(fa, vet))
dxy <- v["Dxy", ]
# The draws above are validate's: the per-replicate indexes agree (validate(pr = TRUE)); rms refits each
# resample with cph's convergence criterion (eps = 1e-4), which moves the mean optimism by ~2e-5 against
# fully converged fits (coxph, and the Python engine), so both are kept.
stopifnot(abs((dxy[["index.orig"]] + 1) / 2 - apparent) < 1e-8,
          abs(dxy[["optimism"]] / 2 - mean(opt)) < 1e-4)
out$veteran <- vet   # the data (survival::veteran), for the Python side
out$fixed <- list(variables = c("karno", "celltype", "age", "diagtime", "prior", "trt"), B = B, seed = seed,
                  dxy_apparent = dxy[["index.orig"]], dxy_optimism = dxy[["optimism"]],
                  dxy_corrected = dxy[["index.corrected"]],
                  c_apparent = (dxy[["index.orig"]] + 1) / 2, c_corrected = (dxy[["index.corrected"]] + 1) / 2,
                  c_optimism_converged = mean(opt), c_corrected_converged = apparent - mean(opt),
                  indices = idx)

# 2. The whole selection procedure (univariable LR P < 0.05, then the multivariable model), refitted on
#    each of the same resamples; a resample that selects nothing counts C = 1/2 on both sides.
cands <- c("karno", "celltype", "age", "diagtime", "prior", "trt")
select <- function(d) {
  keep <- sapply(cands, function(v) {
    fv <- coxph(as.formula(paste("Surv(time, status) ~", v)), data = d)
    lr <- 2 * diff(fv$loglik)
    pchisq(lr, sum(!is.na(coef(fv))), lower.tail = FALSE) < 0.05
  })
  cands[keep]
}
proc <- function(d) {
  s <- select(d)
  if (!length(s)) return(list(train = 0.5, test = 0.5, s = s))
  fm <- as.formula(paste("Surv(time, status) ~", paste(s, collapse = " + ")))
  fb <- coxph(fm, data = d)
  b <- coef(fb); b[is.na(b)] <- 0
  lp <- function(data) drop(model.matrix(fm, data)[, -1, drop = FALSE][, names(b), drop = FALSE] %*% b)
  list(train = cidx(d$time, d$status, lp(d)), test = cidx(vet$time, vet$status, lp(vet)), s = s)
}
orig <- proc(vet)
reps <- lapply(seq_len(B), function(i) proc(vet[idx[i, ], ]))
opt_sel <- mean(sapply(reps, function(r) r$train - r$test))
out$selection <- list(candidates = cands, entry_p = 0.05, selected = orig$s, c_apparent = orig$test,
                      optimism = opt_sel, c_corrected = orig$test - opt_sel,
                      optimism_each = sapply(reps, function(r) r$train - r$test),
                      times_selected = as.list(table(factor(unlist(lapply(reps, `[[`, "s")), levels = cands))))

# 3. Predicted survival S(t | x) at t = 100 days of the fixed model, every patient (survfit.coxph, Efron).
sf <- survfit(fa, newdata = vet)
out$predicted <- list(time = 100, surv = unname(summary(sf, times = 100)$surv[1, ]))

# 4. Issue 15: no death in one arm. The shipped cohort with every death of the experimental arm removed
#    (derivation as tests/reference/cox_cohort.R): coxph warns that the coefficient may be infinite; the
#    LR test is valid.
coh <- read.csv(file.path(root, "data", "cohort.csv"), stringsAsFactors = FALSE, na.strings = "", comment.char = "#")
coh$death_date[coh$arm == "CMT+ICI"] <- NA
start <- as.Date(coh$start_date); death <- as.Date(coh$death_date); last <- as.Date(coh$last_followup_date)
coh$os_event <- as.integer(!is.na(death))
coh$os_months <- as.numeric(ifelse(is.na(death), last, death) - as.numeric(start)) / 30.4375
coh$arm <- factor(coh$arm, levels = c("CMT", "CMT+ICI"))
fz <- suppressWarnings(coxph(Surv(os_months, os_event) ~ arm, data = coh))
out$no_death_arm <- list(lr_chisq = unname(2 * diff(fz$loglik)),
                         lr_p = unname(summary(fz)$logtest[["pvalue"]]),
                         loglik = fz$loglik, events = sum(coh$os_event), n = nrow(coh))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE),
           file.path(root, "tests", "reference", "cox_validate.json"))
