//! Reports for directors: centre self-evaluations in Ofsted's format and value for money.
//!
//! Flow: the lake's metric tables → [`evaluation`] builds one context per unit (disclosure
//! control applied by [`disclosure`], grades by [`rubric`], charts by [`charts`]) → minijinja
//! templates in `reports/` → HTML (and PDF through headless Chromium) in the lake's
//! `reports/` area with an index page.

pub mod avoidance;
pub mod charts;
pub mod data;
pub mod disclosure;
pub mod evaluation;
pub mod evidence;
pub mod figures;
pub mod pdf;
pub mod render;
pub mod rubric;
pub mod scenario;
pub mod value;
