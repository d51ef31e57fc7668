# Golden values for helpers/stats/cox.py, helpers/stats/firth.py and helpers/stats/timevarying.py.
# Run from the project root:  Rscript tests/reference/cox.R
# Writes tests/reference/cox_lung.csv (R's lung data, complete cases of the columns used) and
# tests/reference/cox.json. R 4.2.2, survival 3.5-3. Every block names the R call it mirrors.
suppressPackageStartupMessages({library(survival); library(jsonlite)})
options(digits = 15)
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("--file=", "", args[grep("--file=", args)])))
root <- normalizePath(file.path(here, "..", ".."))

# ---- lung: status 1 = censored, 2 = dead in R; exported as 0/1 ----------------------------------
lung <- survival::lung
lung <- data.frame(time = lung$time, status = lung$status - 1L, age = lung$age,
                   sex = ifelse(lung$sex == 1, "Male", "Female"), ph_ecog = lung$ph.ecog,
                   wt_loss = lung$wt.loss)
lung <- lung[!is.na(lung$ph_ecog), ]          # one missing ECOG removed; wt_loss keeps its NAs
write.csv(lung, file.path(here, "cox_lung.csv"), row.names = FALSE, na = "")
lung$sex <- factor(lung$sex, levels = c("Male", "Female"))
lung$ecog <- factor(lung$ph_ecog)             # levels 0, 1, 2, 3 (3 has a single patient)

coxinfo <- function(fit) list(
  coef = unname(coef(fit)), se = unname(sqrt(diag(vcov(fit)))), names = names(coef(fit)),
  loglik = unname(fit$loglik), concordance = unname(fit$concordance["concordance"]),
  lr = unname(2 * diff(fit$loglik)), n = fit$n, nevent = fit$nevent)

zphinfo <- function(fit) {
  z <- cox.zph(fit, transform = "km")
  tab <- as.data.frame(z$table)
  list(term = rownames(tab), chisq = tab$chisq, df = tab$df, p = tab$p)
}

# The pre-3.0 cox.zph (Grambsch and Therneau 1994 approximation, what lifelines implements):
# per coefficient and global, with the km transform, written out from survival 2.x.
zph_gt <- function(fit, data) {
  sres <- residuals(fit, type = "schoenfeld")
  if (is.null(dim(sres))) sres <- matrix(sres, ncol = 1)
  times <- as.numeric(rownames(as.matrix(residuals(fit, type = "schoenfeld"))))
  ndead <- nrow(sres)
  km <- survfit(Surv(data$time, data$status) ~ 1)
  s <- c(1, km$surv)[findInterval(times, km$time, left.open = TRUE) + 1]
  xx <- (1 - s) - mean(1 - s)
  r2 <- sres %*% fit$var * ndead
  test <- xx %*% r2
  per <- as.vector(test^2 / (diag(fit$var) * ndead * sum(xx^2)))
  tu <- xx %*% sres                          # unscaled residuals for the global test (survival 2.x)
  glob <- as.numeric(tu %*% fit$var %*% t(tu)) * ndead / sum(xx^2)
  list(term = names(coef(fit)), chisq = per, global = glob)
}

# coxph(Surv(time, status) ~ age + sex, ties = "efron")
fit1 <- coxph(Surv(time, status) ~ age + sex, data = lung, ties = "efron")
# coxph(Surv(time, status) ~ age + sex + ecog, ties = "efron")
fit2 <- coxph(Surv(time, status) ~ age + sex + ecog, data = lung, ties = "efron")
fit2b <- coxph(Surv(time, status) ~ age + sex, data = lung, ties = "efron")
# univariable: coxph(Surv(time, status) ~ ecog)
fitu <- coxph(Surv(time, status) ~ ecog, data = lung, ties = "efron")
# breslow for comparison of Firth conventions
fit1b <- coxph(Surv(time, status) ~ age + sex, data = lung, ties = "breslow")

# ---- Firth-penalized partial likelihood, by direct maximisation in R -----------------------------
# l*(b) = l(b) + 0.5 log det I(b); l and I(b) = solve(vcov) from coxph(init = b, iter.max = 0).
penll <- function(b, formula, data, ties) {
  f <- suppressWarnings(coxph(formula, data = data, init = b, ties = ties,
                              control = coxph.control(iter.max = 0)))
  f$loglik[2] + 0.5 * as.numeric(determinant(solve(f$var), logarithm = TRUE)$modulus)
}
firth_R <- function(formula, data, ties, start) {
  fn <- function(b) -penll(b, formula, data, ties)
  o <- optim(start, fn, method = "BFGS", control = list(reltol = 1e-15, maxit = 1000))
  # polish with Newton steps on a numerical gradient and Hessian
  b <- o$par
  for (k in 1:20) {
    h <- 1e-4
    p <- length(b)
    g <- sapply(1:p, function(i) { e <- rep(0, p); e[i] <- h; (fn(b + e) - fn(b - e)) / (2 * h) })
    H <- matrix(0, p, p)
    for (i in 1:p) for (j in 1:p) {
      ei <- rep(0, p); ei[i] <- h; ej <- rep(0, p); ej[j] <- h
      H[i, j] <- (fn(b + ei + ej) - fn(b + ei - ej) - fn(b - ei + ej) + fn(b - ei - ej)) / (4 * h^2)
    }
    step <- solve(H, g)
    b <- b - step
    if (max(abs(step)) < 1e-10) break
  }
  list(coef = unname(b), penloglik = -fn(b))
}
firth1 <- firth_R(Surv(time, status) ~ age + sex, lung, "efron", coef(fit1))
firth1b <- firth_R(Surv(time, status) ~ age + sex, lung, "breslow", coef(fit1b))

# A small data set with complete separation of a binary covariate (every event has x = 1 at the
# moment it happens while a patient with x = 0 is still at risk): coxph's coefficient diverges.
sep <- data.frame(time = c(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
                  status = c(1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0),
                  x = c(1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0),
                  z = c(0.5, -1.2, 0.3, 1.1, -0.4, 0.8, -0.9, 0.2, 1.5, -0.3, 0.7, -1.0))
sep$x[11] <- 1   # last event also x = 1 -> x = 1 for every event: monotone likelihood
write.csv(sep, file.path(here, "cox_separation.csv"), row.names = FALSE)
fsep <- suppressWarnings(coxph(Surv(time, status) ~ x + z, data = sep))
firth_sep <- firth_R(Surv(time, status) ~ x + z, sep, "efron", c(1, 0))

out <- list(
  versions = list(R = R.version.string, survival = as.character(packageVersion("survival"))),
  lung = list(
    fit_age_sex = coxinfo(fit1),
    fit_age_sex_ecog = coxinfo(fit2),
    fit_ecog = coxinfo(fitu),
    # anova(fit2b, fit2): LR test for the whole ECOG factor given age and sex (nested fits)
    anova_ecog = list(chisq = anova(fit2b, fit2)$Chisq[2], df = anova(fit2b, fit2)$Df[2],
                      p = anova(fit2b, fit2)[["Pr(>|Chi|)"]][2]),
    # anova(fitu): LR test of the univariable ECOG model against the null model
    anova_ecog_univariable = list(chisq = anova(fitu)$Chisq[2], df = anova(fitu)$Df[2],
                                  p = anova(fitu)[["Pr(>|Chi|)"]][2]),
    # cox.zph(fit, transform = "km"): exact score test (survival >= 3.0), per term and GLOBAL
    zph_age_sex = zphinfo(fit1),
    zph_age_sex_ecog = zphinfo(fit2),
    # survival 2.x cox.zph (Grambsch-Therneau approximation), per coefficient and global
    zph_gt_age_sex = zph_gt(fit1, lung),
    zph_gt_age_sex_ecog = zph_gt(fit2, lung),
    firth_age_sex_efron = firth1,
    firth_age_sex_breslow = firth1b
  ),
  separation = list(coxph_coef = unname(coef(fsep)), firth = firth_sep)
)

# ---- the shipped cohort, once data/ exists ------------------------------------------------------
cohort_file <- file.path(root, "data", "cohort.csv")
if (file.exists(cohort_file)) source(file.path(here, "cox_cohort.R"), local = TRUE)

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), file.path(here, "cox.json"))
