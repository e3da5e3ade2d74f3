//! The statistics of metrics.md §8 as plain functions, and the same functions as DataFusion
//! UDFs so metric SQL can call them (`wilson_lower(x, n)` …).
//!
//! Everything is computed in f64 and never rounded here: rounding is for display.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// The two-sided normal quantile for a confidence level (0.95 → 1.959963984540054).
pub fn z_for(confidence: f64) -> f64 {
    let normal = Normal::new(0.0, 1.0).expect("standard normal");
    normal.inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

/// Wilson score interval for x successes of n (§8.1). `None` when n = 0.
pub fn wilson(x: f64, n: f64, z: f64) -> Option<(f64, f64)> {
    if n <= 0.0 || x < 0.0 || x > n {
        return None;
    }
    let p = x / n;
    let z2 = z * z;
    let spread = z * (z2 + 4.0 * x * (1.0 - p)).sqrt();
    let denominator = 2.0 * (n + z2);
    // The formula gives exactly 0 and 1 at the edges only up to rounding; pin them.
    let lower = if x == 0.0 {
        0.0
    } else {
        (2.0 * x + z2 - spread) / denominator
    };
    let upper = if x == n {
        1.0
    } else {
        (2.0 * x + z2 + spread) / denominator
    };
    Some((lower, upper))
}

/// Confidence limits on a Poisson count x (§8.2): Byar's approximation when x ≥ 10,
/// the exact chi-squared limits below. Scale both by `10_000 / population` for a rate.
pub fn poisson_count_limits(x: f64, confidence: f64) -> Option<(f64, f64)> {
    if x < 0.0 || x.fract() != 0.0 {
        return None;
    }
    let alpha = 1.0 - confidence;
    if x >= 10.0 {
        let z = z_for(confidence);
        let lower = x * (1.0 - 1.0 / (9.0 * x) - z / (3.0 * x.sqrt())).powi(3);
        let x1 = x + 1.0;
        let upper = x1 * (1.0 - 1.0 / (9.0 * x1) + z / (3.0 * x1.sqrt())).powi(3);
        return Some((lower, upper));
    }
    let lower = if x == 0.0 {
        0.0
    } else {
        ChiSquared::new(2.0 * x).ok()?.inverse_cdf(alpha / 2.0) / 2.0
    };
    let upper = ChiSquared::new(2.0 * x + 2.0)
        .ok()?
        .inverse_cdf(1.0 - alpha / 2.0)
        / 2.0;
    Some((lower, upper))
}

/// The interval method a count of x gets: `byar` or `exact_poisson`.
pub fn poisson_method(x: f64) -> &'static str {
    if x >= 10.0 { "byar" } else { "exact_poisson" }
}

/// Newcombe's hybrid score interval (method 10) for p̂₁ − p̂₂ (§8.3).
pub fn newcombe(x1: f64, n1: f64, x2: f64, n2: f64, z: f64) -> Option<(f64, f64)> {
    let (l1, u1) = wilson(x1, n1, z)?;
    let (l2, u2) = wilson(x2, n2, z)?;
    let (p1, p2) = (x1 / n1, x2 / n2);
    let d = p1 - p2;
    let lower = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let upper = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    Some((lower, upper))
}

/// Mean ± z·s/√n from the count, sum and sum of squares (§8.4). `None` when n < 2.
pub fn mean_interval(n: f64, sum: f64, sum_sq: f64, z: f64) -> Option<(f64, f64)> {
    if n < 2.0 {
        return None;
    }
    let mean = sum / n;
    let variance = ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
    let half = z * variance.sqrt() / n.sqrt();
    Some((mean - half, mean + half))
}

/// The comparison label of §8.5.
pub fn comparison(lower: Option<f64>, upper: Option<f64>, comparator: Option<f64>) -> &'static str {
    match (lower, upper, comparator) {
        (Some(l), _, Some(c)) if l > c => "significantly_higher",
        (_, Some(u), Some(c)) if u < c => "significantly_lower",
        (Some(_), Some(_), Some(_)) => "similar",
        _ => "not_compared",
    }
}

/// Registers the statistics UDFs with a session, at the configured confidence level:
/// `wilson_lower(x, n)`, `wilson_upper(x, n)`, `poisson_lower(x)`, `poisson_upper(x)`
/// (limits on a count), `newcombe_lower(x1, n1, x2, n2)`, `newcombe_upper(…)`,
/// `mean_lower(n, sum, sum_sq)`, `mean_upper(…)`.
pub fn register_udfs(ctx: &SessionContext, confidence: f64) {
    for u in udfs(confidence) {
        ctx.register_udf(u);
    }
}

/// The statistics UDFs at a confidence level (see [`register_udfs`]). Ballista's scheduler
/// and executors register the same list, since a distributed plan names them.
pub fn udfs(confidence: f64) -> Vec<ScalarUDF> {
    let z = z_for(confidence);
    vec![
        // A full build's date; an incremental build registers its own in its session.
        super::incremental::recompute_from_udf(super::incremental::FULL_FROM),
        float_udf("wilson_lower", 2, move |a| {
            wilson(a[0], a[1], z).map(|i| i.0)
        }),
        float_udf("wilson_upper", 2, move |a| {
            wilson(a[0], a[1], z).map(|i| i.1)
        }),
        float_udf("poisson_lower", 1, move |a| {
            poisson_count_limits(a[0], confidence).map(|i| i.0)
        }),
        float_udf("poisson_upper", 1, move |a| {
            poisson_count_limits(a[0], confidence).map(|i| i.1)
        }),
        float_udf("newcombe_lower", 4, move |a| {
            newcombe(a[0], a[1], a[2], a[3], z).map(|i| i.0)
        }),
        float_udf("newcombe_upper", 4, move |a| {
            newcombe(a[0], a[1], a[2], a[3], z).map(|i| i.1)
        }),
        float_udf("mean_lower", 3, move |a| {
            mean_interval(a[0], a[1], a[2], z).map(|i| i.0)
        }),
        float_udf("mean_upper", 3, move |a| {
            mean_interval(a[0], a[1], a[2], z).map(|i| i.1)
        }),
    ]
}

/// A row-wise UDF over `arity` float arguments; null in, null out.
fn float_udf(
    name: &str,
    arity: usize,
    f: impl Fn(&[f64]) -> Option<f64> + Send + Sync + 'static,
) -> ScalarUDF {
    let fun = move |args: &[ColumnarValue]| -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let floats: Vec<ArrayRef> = arrays
            .iter()
            .map(|a| cast(a, &DataType::Float64))
            .collect::<Result<_, _>>()?;
        let floats: Vec<&Float64Array> = floats
            .iter()
            .map(|a| a.as_any().downcast_ref::<Float64Array>().expect("cast"))
            .collect();
        let rows = floats.first().map_or(1, |a| a.len());
        let mut row = vec![0.0; floats.len()];
        let out: Float64Array = (0..rows)
            .map(|i| {
                for (slot, a) in row.iter_mut().zip(&floats) {
                    if a.is_null(i) {
                        return None;
                    }
                    *slot = a.value(i);
                }
                f(&row)
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    };
    create_udf(
        name,
        vec![DataType::Float64; arity],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(fun),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(v: f64) -> f64 {
        (v * 1000.0).round() / 10.0
    }

    #[test]
    fn z_at_95_percent() {
        assert!((z_for(0.95) - 1.959963984540054).abs() < 1e-9);
    }

    #[test]
    fn wilson_matches_the_worked_examples() {
        let z = z_for(0.95);
        // WE1, WE2, WE6: (x, n, lower %, upper %)
        for (x, n, lo, hi) in [
            (6.0, 10.0, 31.3, 83.2),
            (5.0, 10.0, 23.7, 76.3),
            (3.0, 10.0, 10.8, 60.3),
            (3.0, 6.0, 18.8, 81.2),
            (2.0, 5.0, 11.8, 76.9),
            (4.0, 5.0, 37.6, 96.4),
            (0.0, 5.0, 0.0, 43.4),
            (5.0, 6.0, 43.6, 97.0),
            (30.0, 50.0, 46.2, 72.4),
            (12.0, 25.0, 30.0, 66.5),
            (20.0, 80.0, 16.8, 35.5),
            (1.0, 4.0, 4.6, 69.9),
        ] {
            let (l, u) = wilson(x, n, z).unwrap();
            assert_eq!((pct(l), pct(u)), (lo, hi), "{x}/{n}");
        }
        assert_eq!(wilson(0.0, 0.0, z), None);
        assert_eq!(wilson(5.0, 5.0, z).unwrap().1, 1.0);
    }

    #[test]
    fn poisson_limits_match_we5() {
        // SC-01: 180 referrals, Byar's 154.66 – 208.30; per 10,000 of 12,500: 123.7 – 166.6.
        let (l, u) = poisson_count_limits(180.0, 0.95).unwrap();
        assert_eq!(
            ((l * 100.0).round() / 100.0, (u * 100.0).round() / 100.0),
            (154.66, 208.30)
        );
        let rate = |c: f64| (c / 12_500.0 * 10_000.0 * 10.0).round() / 10.0;
        assert_eq!((rate(l), rate(u)), (123.7, 166.6));
        // SC-03: 4 children, exact limits 1.090 – 10.242; per 10,000 of 850: 12.8 – 120.5.
        let (l, u) = poisson_count_limits(4.0, 0.95).unwrap();
        assert_eq!(
            ((l * 1000.0).round() / 1000.0, (u * 1000.0).round() / 1000.0),
            (1.090, 10.242)
        );
        let rate = |c: f64| (c / 850.0 * 10_000.0 * 10.0).round() / 10.0;
        assert_eq!((rate(l), rate(u)), (12.8, 120.5));
        // x = 0: upper count 3.689, 43.4 per 10,000 of 850.
        let (l, u) = poisson_count_limits(0.0, 0.95).unwrap();
        assert_eq!((l, (u * 1000.0).round() / 1000.0), (0.0, 3.689));
        assert_eq!(poisson_method(9.0), "exact_poisson");
        assert_eq!(poisson_method(10.0), "byar");
    }

    #[test]
    fn newcombe_matches_we6() {
        let (l, u) = newcombe(45.0, 60.0, 120.0, 200.0, z_for(0.95)).unwrap();
        assert_eq!((pct(l), pct(u)), (1.1, 26.5));
    }

    #[test]
    fn mean_interval_matches_we3() {
        // SR-13: ELGs at expected 17, 15, 16, 17, 15, 16, 12 → mean 15.4, interval 14.2 – 16.7.
        let v = [17.0, 15.0, 16.0, 17.0, 15.0, 16.0, 12.0];
        let (sum, sq): (f64, f64) = (v.iter().sum(), v.iter().map(|x| x * x).sum());
        let (l, u) = mean_interval(7.0, sum, sq, z_for(0.95)).unwrap();
        assert_eq!(
            ((l * 10.0).round() / 10.0, (u * 10.0).round() / 10.0),
            (14.2, 16.7)
        );
        assert_eq!(mean_interval(1.0, 3.0, 9.0, 1.96), None);
    }

    #[test]
    fn comparison_labels_match_we6() {
        let z = z_for(0.95);
        let label = |x, n| {
            let (l, u) = wilson(x, n, z).unwrap();
            comparison(Some(l), Some(u), Some(0.45))
        };
        assert_eq!(label(30.0, 50.0), "significantly_higher");
        assert_eq!(label(12.0, 25.0), "similar");
        assert_eq!(label(20.0, 80.0), "significantly_lower");
        assert_eq!(comparison(None, None, Some(0.45)), "not_compared");
        assert_eq!(comparison(Some(0.1), Some(0.2), None), "not_compared");
    }
}
