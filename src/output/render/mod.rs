//! The text, Actions outputs and step summary of each report.

pub mod build;
pub mod deploy;
pub mod promote;
pub mod release;
mod tag;
