//! A one-feature least-squares line through smartcore, with its coefficient of determination.

use serde::Serialize;
use smartcore::{
    linalg::basic::{arrays::Array, matrix::DenseMatrix},
    linear::linear_regression::{LinearRegression, LinearRegressionParameters},
};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LineFit {
    pub intercept: f64,
    pub slope: f64,
    /// Coefficient of determination, 0 to 1 (1 is a perfect line).
    pub r2: f64,
    pub points: usize,
}

impl LineFit {
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// Fits y = intercept + slope × x. `None` with fewer than two distinct x values.
pub fn fit_line(points: &[(f64, f64)]) -> Option<LineFit> {
    let first_x = points.first()?.0;
    if points.iter().all(|(x, _)| *x == first_x) {
        return None;
    }
    let x = DenseMatrix::from_2d_vec(&points.iter().map(|(x, _)| vec![*x]).collect()).ok()?;
    let y: Vec<f64> = points.iter().map(|(_, y)| *y).collect();
    let model = LinearRegression::fit(&x, &y, LinearRegressionParameters::default()).ok()?;
    let predicted: Vec<f64> = model.predict(&x).ok()?;
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let total: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let residual: f64 = y.iter().zip(&predicted).map(|(v, p)| (v - p).powi(2)).sum();
    let r2 = if total == 0.0 {
        1.0
    } else {
        1.0 - residual / total
    };
    let slope = *model.coefficients().get((0, 0));
    let intercept = *model.intercept();
    Some(LineFit {
        intercept,
        slope,
        r2,
        points: points.len(),
    })
}
