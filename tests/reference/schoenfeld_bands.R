# Golden values for the Schoenfeld-residual figure (helpers.report.prognostic.plot_schoenfeld): the
# natural-spline smoother and its +-2 SE band that R's plot.cox.zph draws, captured from the plot itself
# (recordPlot: the three lines yhat, yhat + 2 SE, yhat - 2 SE at plot.cox.zph's 40 points), for a Cox model of
# survival::veteran with the Kaplan-Meier time transform.
# Run from the repository root: Rscript tests/reference/schoenfeld_bands.R  (writes schoenfeld_bands.json)
suppressPackageStartupMessages({library(survival); library(jsonlite)})
vet <- survival::veteran
fit <- coxph(Surv(time, status) ~ karno + age + trt, data = vet, ties = "efron")
zp <- cox.zph(fit, transform = "km")
out <- list(R = R.version.string, survival = as.character(packageVersion("survival")),
            data = vet[, c("time", "status", "karno", "age", "trt")], terms = names(coef(fit)),
            coef = unname(coef(fit)), bands = list())
pdf(NULL)
dev.control("enable")
for (i in seq_along(coef(fit))) {
  plot(zp[i], resid = FALSE, df = 4, nsmo = 40)
  calls <- recordPlot()[[1]]
  lines_xy <- Filter(function(call) identical(call[[2]][[1]]$name, "C_plotXY"), calls)
  xy <- lapply(tail(lines_xy, 3), function(call) call[[2]][[2]])   # the last three: fit, upper, lower
  out$bands[[names(coef(fit))[i]]] <- list(x = xy[[1]]$x, fit = xy[[1]]$y, upper = xy[[2]]$y, lower = xy[[3]]$y)
}
invisible(dev.off())
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE), "tests/reference/schoenfeld_bands.json")
