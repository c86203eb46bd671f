//! A series CSV's time column: its values as the file writes them and as numbers (ISO 8601
//! dates as seconds), checked to increase, and where a step between rows is a gap.

use super::*;
use crate::data::spec::Gap;

/// A step longer than this many usual ones is a gap (`--gap`).
pub const GAP_STEPS: f64 = 3.0;
/// A step longer than this many usual ones is irregular: refused under `--gap refuse`,
/// trained across (with a note) under `--gap split` when it is no gap.
const IRREGULAR_STEPS: f64 = 1.5;

/// A series file's time column, one value per step.
#[derive(Clone, Debug, PartialEq)]
pub struct Times {
    /// The column's name in the file's header.
    pub name: String,
    /// Each step's value as the file writes it.
    pub text: Vec<String>,
    /// Each step as a number (a date as seconds since 1970), when every value is one.
    pub at: Option<Vec<f64>>,
    /// The values are dates (so `at` is in seconds).
    pub dates: bool,
    /// Each step's line in the file (blank lines and quoted line breaks counted).
    pub lines: Vec<usize>,
}

impl Times {
    /// The values of the steps `at`, in that order.
    pub fn select(&self, at: &[usize]) -> Times {
        Times {
            name: self.name.clone(),
            text: at.iter().map(|&i| self.text[i].clone()).collect(),
            at: self.at.as_ref().map(|v| at.iter().map(|&i| v[i]).collect()),
            dates: self.dates,
            lines: at.iter().map(|&i| self.lines[i]).collect(),
        }
    }

    /// The x axis of a plot of these steps: the values as numbers (dates in hours, days or
    /// minutes from the first, whichever fits the span) and the axis' name; `None` when
    /// they are not numbers.
    pub fn axis(&self) -> Option<(Vec<f64>, String)> {
        let at = self.at.as_ref()?;
        if !self.dates {
            return Some((at.clone(), self.name.clone()));
        }
        let first = *at.first()?;
        let span = at.last()? - first;
        let (unit, seconds) = [("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)]
            .into_iter()
            .find(|&(_, s)| span >= 3.0 * s)
            .unwrap_or(("seconds", 1.0));
        let x = at.iter().map(|t| (t - first) / seconds).collect();
        Some((x, format!("{unit} from {}", self.text[0])))
    }
}

/// Seconds since 1970-01-01 of an ISO 8601 date or date and time: `YYYY-MM-DD`, then
/// optionally `T` or a space, `HH:MM`, `:SS`, a fraction, and `Z` or an offset
/// (`+HH:MM`, `+HHMM`, `+HH`, after a space or not); `None` for anything else.
pub fn iso_seconds(s: &str) -> Option<f64> {
    let s = s.trim();
    if !s.is_ascii() {
        return None;
    }
    let num = |t: &str| -> Option<i64> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
    };
    let (date, rest) = s.split_at(s.len().min(10));
    let mut parts = date.split('-');
    let (y, m, d) = (num(parts.next()?)?, num(parts.next()?)?, num(parts.next()?)?);
    if date.len() != 10 || !(1..=12).contains(&m) || !(1..=days_in(y, m)).contains(&d) {
        return None;
    }
    let mut seconds = days_from_civil(y, m, d) as f64 * 86400.0;
    if rest.is_empty() {
        return Some(seconds);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    // The offset from UTC, if any, ends the text.
    let (clock, offset) = match rest.find(['Z', 'z', '+', '-']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let mut hms = clock.trim_end().split(':');
    let (h, min) = (hms.next()?, hms.next()?);
    if h.len() != 2 || min.len() != 2 {
        return None;
    }
    let (h, min) = (num(h)?, num(min)?);
    let sec: f64 = match hms.next() {
        Some(t) if t.split('.').all(|p| num(p).is_some()) => t.parse().ok()?,
        Some(_) => return None,
        None => 0.0,
    };
    if hms.next().is_some()
        || h > 24
        || min > 59
        || sec >= 61.0
        || (h == 24 && min + sec as i64 > 0)
    {
        return None;
    }
    seconds += (h * 3600 + min * 60) as f64 + sec;
    match offset {
        "" | "Z" | "z" => {}
        _ => {
            let sign = if offset.starts_with('-') { 1.0 } else { -1.0 };
            let digits = offset[1..].replace(':', "");
            if digits.len() != 2 && digits.len() != 4 {
                return None;
            }
            let (oh, om) =
                (num(&digits[..2])?, if digits.len() == 4 { num(&digits[2..])? } else { 0 });
            seconds += sign * (oh * 3600 + om * 60) as f64;
        }
    }
    Some(seconds)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the date (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// A length of time in the time column's units: seconds, minutes, hours or days for dates.
pub fn span(value: f64, dates: bool) -> String {
    if !dates {
        return format!("{}", (value * 1e6).round() / 1e6);
    }
    let (unit, seconds) = [("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)]
        .into_iter()
        .find(|&(_, s)| value >= s)
        .unwrap_or(("s", 1.0));
    format!("{} {unit}", (value / seconds * 100.0).round() / 100.0)
}

/// A series CSV's time column, if it has one: the first column named `timestamp` or `time`
/// (any case), with the file's header. Its values must increase from row to row (as
/// numbers or dates when they all are, else as text): an error names the first row that
/// does not.
pub(super) fn time_column(path: &Path, reading: &Reading) -> Result<Option<(Times, Vec<String>)>> {
    let Some((times, header)) = read_times(path, reading)? else { return Ok(None) };
    // Runs made before gaps were looked for compared dates as text: they still do, so
    // their files read as they did.
    increasing(&times, path, times.dates && reading.gap == Some(Gap::Across))?;
    Ok(Some((times, header)))
}

/// A CSV's time column as `time_column` finds it, unchecked.
fn read_times(path: &Path, reading: &Reading) -> Result<Option<(Times, Vec<String>)>> {
    let format = csv_format(reading);
    if format.no_header {
        return Ok(None);
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut reader, _, _) = table::csv_reader(&bytes, &format);
    let mut records = reader.records();
    let header: Vec<String> = match records.next() {
        Some(header) => header.with_context(|| format!("reading {}", path.display()))?,
        None => return Ok(None),
    }
    .iter()
    .map(str::to_string)
    .collect();
    let Some(column) =
        header.iter().position(|h| matches!(h.to_lowercase().as_str(), "timestamp" | "time"))
    else {
        return Ok(None);
    };
    let (mut text, mut lines) = (Vec::new(), Vec::new());
    let mut line_of = table::Lines::new(&bytes, &format);
    for record in records {
        let record = record.with_context(|| format!("reading {}", path.display()))?;
        text.push(record.get(column).unwrap_or_default().trim().to_string());
        lines.push(record.position().map_or(0, |p| line_of.of(p) as usize));
    }
    let numbers: Option<Vec<f64>> = text.iter().map(|v| v.parse().ok()).collect();
    let dates = numbers.is_none().then(|| text.iter().map(|v| iso_seconds(v)).collect());
    let dates: Option<Vec<f64>> = dates.flatten();
    let name = header[column].clone();
    let times = Times { name, dates: dates.is_some(), at: numbers.or(dates), text, lines };
    Ok(Some((times, header)))
}

/// Refuses `times` unless each value comes after the one before (as numbers or instants,
/// or as text when `as_text` or they are neither), naming the first two lines that do not.
fn increasing(times: &Times, path: &Path, as_text: bool) -> Result<()> {
    let later = |i: usize| match (&times.at, as_text) {
        (Some(n), false) => n[i] > n[i - 1],
        _ => times.text[i] > times.text[i - 1],
    };
    if let Some(i) = (1..times.text.len()).find(|&i| !later(i)) {
        bail!(
            "{}: the {} column must increase from row to row, but line {} ({}) does not come \
             after line {} ({})",
            path.display(),
            times.name,
            times.lines[i],
            times.text[i],
            times.lines[i - 1],
            times.text[i - 1]
        );
    }
    Ok(())
}

/// Whether `path` is a CSV whose time column increases from row to row (a series without
/// `--window`); a file that cannot be read is not (its reader says why later).
pub fn is_timed_csv(path: &Path, reading: &Reading) -> bool {
    if extension(path).as_deref() != Some("csv") {
        return false;
    }
    let Ok(Some((times, _))) = read_times(path, reading) else { return false };
    let Err(e) = increasing(&times, path, false) else { return true };
    crate::log::note(format_args!(
        "note: {e:#}; read as a table ({} auto reads it as a series, and stops there)",
        crate::invalid::dashed("window")
    ));
    false
}

/// The steps (indices) that begin a new stretch after a gap in `times` under `gap`: the
/// steps after a gap (longer than `GAP_STEPS` usual steps) with `Gap::Split`; none with
/// `Gap::Across`. With `Gap::Refuse` any irregular step is an error naming its lines.
pub fn gaps(times: &Times, gap: Gap, path: &Path) -> Result<Vec<usize>> {
    let Some(at) = times.at.as_ref().filter(|_| gap != Gap::Across) else {
        return Ok(Vec::new());
    };
    let mut steps: Vec<f64> = at.windows(2).map(|p| p[1] - p[0]).collect();
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    let usual = sorted[sorted.len() / 2];
    for s in &mut steps {
        *s /= usual;
    }
    let (name, dates) = (&times.name, times.dates);
    let jump = |i: usize| {
        format!(
            "from {} (line {}) to {} (line {}): {} where the usual step is {}",
            times.text[i],
            times.lines[i],
            times.text[i + 1],
            times.lines[i + 1],
            span(at[i + 1] - at[i], dates),
            span(usual, dates)
        )
    };
    let irregular: Vec<usize> = (0..steps.len()).filter(|&i| steps[i] > IRREGULAR_STEPS).collect();
    let Some(&first) = irregular.first() else { return Ok(Vec::new()) };
    if gap == Gap::Refuse {
        let problem = format!(
            "{}: the {name} column jumps {}{}; with {{gap}} refuse the steps must be regular \
             ({{gap}} split trains on the stretches between gaps)",
            path.display(),
            jump(first),
            match irregular.len() {
                1 => String::new(),
                n => format!(" (one of {n} steps over {IRREGULAR_STEPS} usual ones)"),
            }
        );
        return Err(Invalid::plain(problem).into());
    }
    let cuts: Vec<usize> = irregular.iter().copied().filter(|&i| steps[i] > GAP_STEPS).collect();
    if let Some(&longest) = cuts.iter().max_by(|&&a, &&b| steps[a].total_cmp(&steps[b])) {
        crate::log::note(format_args!(
            "note: {}: {} in the {name} column (steps over {GAP_STEPS} usual ones; the longest \
             {}); split there, no window crosses one ({} refuse stops instead)",
            path.display(),
            crate::log::counted(cuts.len(), "gap"),
            jump(longest),
            crate::invalid::dashed("gap")
        ));
    }
    let across = irregular.len() - cuts.len();
    if across > 0 {
        crate::log::note(format_args!(
            "note: {}: {} of the {name} column {} longer than usual but under {GAP_STEPS} \
             usual ones; trained across (the first {})",
            path.display(),
            crate::log::counted(across, "step"),
            if across == 1 { "is" } else { "are" },
            jump(irregular.iter().copied().find(|&i| steps[i] <= GAP_STEPS).unwrap_or(first))
        ));
    }
    Ok(cuts.into_iter().map(|i| i + 1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_and_times_are_seconds_since_1970() {
        assert_eq!(iso_seconds("1970-01-01"), Some(0.0));
        assert_eq!(iso_seconds("2000-03-01"), Some(951868800.0));
        assert_eq!(iso_seconds("2014-07-01 00:05:00"), Some(1404173100.0));
        assert_eq!(iso_seconds("2014-07-01T00:05:00Z"), Some(1404173100.0));
        assert_eq!(iso_seconds("2014-07-01T02:05:00+02:00"), Some(1404173100.0));
        assert_eq!(iso_seconds("2014-06-30T19:05-0500"), Some(1404173100.0));
        assert_eq!(iso_seconds("2014-07-01 00:05:00.25"), Some(1404173100.25));
        assert_eq!(iso_seconds("2014-07-01 02:05:00 +02"), Some(1404173100.0));
        let bad = ["2014-13-01", "2014-02-30", "2014-7-1", "14:00", "2014-07-01 1", "x"];
        let worse = ["2014-07-0112:00", "2014-07-01 24:59", "2014-07-01 1:2:3", "2014年07月01日"];
        for bad in bad.into_iter().chain(worse) {
            assert_eq!(iso_seconds(bad), None, "{bad}");
        }
        // 2024 is a leap year, 2100 is not.
        assert!(iso_seconds("2024-02-29").is_some() && iso_seconds("2100-02-29").is_none());
    }

    fn minutes(at: &[f64]) -> Times {
        Times {
            name: "timestamp".into(),
            text: at.iter().map(|t| format!("t{t}")).collect(),
            at: Some(at.iter().map(|t| t * 60.0).collect()),
            dates: true,
            lines: (2..2 + at.len()).collect(),
        }
    }

    /// `text` written to a CSV file in a folder of its own.
    fn csv_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// Lines are the file's own: a blank line and a quoted line break count.
    #[test]
    fn a_steps_line_is_its_line_in_the_file() {
        let (_dir, path) = csv_file("time,value,note\n0,1,a\n1,2,b\n\n2,3,\"two\nlines\"\n9,4,c\n");
        let (times, _) = time_column(&path, &Reading::default()).unwrap().unwrap();
        assert_eq!(times.lines, vec![2, 3, 5, 7]);
        let refused = format!("{:#}", gaps(&times, Gap::Refuse, &path).unwrap_err());
        assert!(refused.contains("from 2 (line 5) to 9 (line 7)"), "{refused}");
    }

    /// 09:00 UTC, then 08:00 UTC written as 10:00+02:00: later as text, earlier in time.
    /// Refused, except for a run made before gaps were looked for (which read it).
    #[test]
    fn dates_increase_as_instants_except_for_older_runs() {
        let (_dir, path) =
            csv_file("time,value\n2014-07-01T09:00:00Z,1\n2014-07-01T10:00:00+02:00,2\n");
        let error = format!("{:#}", time_column(&path, &Reading::default()).unwrap_err());
        assert!(error.contains("must increase") && error.contains("line 3"), "{error}");
        let old = Reading { gap: Some(Gap::Across), ..Reading::default() };
        assert!(time_column(&path, &old).unwrap().is_some());
        // Without a window the file is a table, said in a note.
        assert!(!is_timed_csv(&path, &Reading::default()));
    }

    #[test]
    fn gaps_split_refuse_or_are_crossed() {
        let path = Path::new("log.csv");
        // One-minute steps, a 2-minute step (irregular, no gap), a 2-hour hole.
        let mut at: Vec<f64> = (0..10).map(f64::from).collect();
        at.push(11.0);
        at.extend((0..10).map(|i| 131.0 + i as f64));
        let times = minutes(&at);
        assert_eq!(gaps(&times, Gap::Split, path).unwrap(), vec![11]);
        assert!(gaps(&times, Gap::Across, path).unwrap().is_empty());
        let refused = format!("{:#}", gaps(&times, Gap::Refuse, path).unwrap_err());
        // The first irregular step: rows 9 and 10 are lines 11 and 12.
        assert!(refused.contains("from t9 (line 11) to t11 (line 12): 2 min"), "{refused}");
        assert!(refused.contains("usual step is 1 min") && refused.contains("one of 2"));
        let regular = minutes(&(0..50).map(f64::from).collect::<Vec<_>>());
        assert!(gaps(&regular, Gap::Refuse, path).unwrap().is_empty());
        assert_eq!(span(7200.0, true), "2 h");
        assert_eq!(span(0.5, false), "0.5");
    }
}
