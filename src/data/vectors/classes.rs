//! Class names and codes of vector data: the classes of a run's tables, labels to codes,
//! and the names a setting gives (`classes`, `normal_classes`) resolved against the
//! recorded classes.

use super::*;
use crate::data::table::Table;
use crate::invalid::Invalid;

/// The distinct labels of `tables`, in order (numerically when every label is a number):
/// a label's position is its code.
pub fn class_list(tables: &[&Table]) -> Result<Vec<String>> {
    class_names(tables.iter().filter_map(|t| t.labels.as_ref()).flatten().map(|l| l.as_str()))
}

/// The classes of these labels: numerically ordered when all are numbers, else sorted.
pub fn class_names<'a>(labels: impl Iterator<Item = &'a str>) -> Result<Vec<String>> {
    let mut names: Vec<String> = labels.map(str::to_string).collect();
    names.sort_unstable();
    names.dedup();
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        names.sort_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse().unwrap_or(0.0)));
    }
    if names.len() > 256 {
        bail!(
            "the labels have {} distinct values, more than the 256 classes ae-tch keeps apart; \
             is the label column an identifier?",
            names.len()
        );
    }
    Ok(names)
}

/// Each label's position in `classes`; a label the list lacks is an error naming it.
pub fn codes(labels: &[String], classes: &[String]) -> Result<Vec<u8>> {
    labels
        .iter()
        .map(|l| match class_position(l, classes) {
            Some(i) => Ok(i as u8),
            None => bail!("label '{l}' is not one of the run's classes {classes:?}"),
        })
        .collect()
}

/// Where `label` is among `classes`, matched as the table keys labels (`label_text`: a
/// run that recorded "0.0" still reads a file's "0"); the first match.
fn class_position(label: &str, classes: &[String]) -> Option<usize> {
    let key = table::label_text(label);
    classes
        .iter()
        .position(|c| c == label)
        .or_else(|| classes.iter().position(|c| table::label_text(c) == key))
}

/// The codes of the class names `names` that `setting` gives (the id of `classes` or
/// `normal_classes`) among `classes`; an unknown name is an error listing the known ones.
pub fn class_codes(names: &[String], classes: &[String], setting: &'static str) -> Result<Vec<u8>> {
    names
        .iter()
        .map(|n| match class_position(n, classes) {
            Some(i) => Ok(i as u8),
            None if classes.is_empty() => {
                Err(Invalid::of(setting, "needs labels, and the data have none").into())
            }
            None => {
                let problem = format!(
                    "{{{setting}}}: unknown class '{n}'; the classes are {}",
                    quoted(classes)
                );
                Err(Invalid::plain(problem).into())
            }
        })
        .collect()
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

/// Class names as codes for either kind of data: vector labels and an image folder's
/// label folders by the names recorded in the spec, numbered image labels as numbers.
pub fn resolve_classes(
    names: &[String],
    spec: &DataSpec,
    setting: &'static str,
) -> Result<Vec<u8>> {
    match spec {
        DataSpec::Vector(v) | DataSpec::Series(v, _) => class_codes(names, &v.classes, setting),
        DataSpec::Image(s) => image_class_codes(names, &s.classes, setting),
    }
}

/// Image labels: a label folder's name among `classes` (the folders, sorted), or its code
/// as a number (what earlier versions showed); numbers 0–255 when the folders are numbered
/// and there are no names.
pub fn image_class_codes(
    names: &[String],
    classes: &[String],
    setting: &'static str,
) -> Result<Vec<u8>> {
    names
        .iter()
        .map(|n| {
            let named = classes.iter().position(|c| c == n.trim()).map(|i| i as u8);
            let number = n.trim().parse::<u8>().ok();
            match (named, number) {
                (Some(code), _) => Ok(code),
                (None, Some(code)) if classes.is_empty() || (code as usize) < classes.len() => {
                    Ok(code)
                }
                _ if classes.is_empty() => {
                    let problem = format!(
                        "{{{setting}}}: '{n}' is not an image label (a number from 0 to 255)"
                    );
                    Err(Invalid::plain(problem).into())
                }
                _ => {
                    let problem = format!(
                        "{{{setting}}}: unknown class '{n}'; the classes (label folders) are {}",
                        quoted(classes)
                    );
                    Err(Invalid::plain(problem).into())
                }
            }
        })
        .collect()
}
