//! What can be wrong with a schedule expression or a time zone name.

use std::fmt;

use crate::validate::show;

/// A field of a `cron(...)` expression, in the order they are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// 0-59.
    Minutes,
    /// 0-23.
    Hours,
    /// 1-31, or `?`, `L`, `LW`, `nW`.
    DayOfMonth,
    /// 1-12 or JAN-DEC.
    Month,
    /// 1-7 (1 = SUN) or SUN-SAT, or `?`, `L`, `nL`, `n#k`.
    DayOfWeek,
    /// 1970-2199.
    Year,
}

impl Field {
    /// The six fields in the order of the expression.
    pub const ALL: [Field; 6] = [
        Field::Minutes,
        Field::Hours,
        Field::DayOfMonth,
        Field::Month,
        Field::DayOfWeek,
        Field::Year,
    ];

    /// Smallest and largest value the field takes.
    pub fn range(self) -> (u16, u16) {
        match self {
            Field::Minutes => (0, 59),
            Field::Hours => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (1, 7),
            Field::Year => (1970, 2199),
        }
    }

    /// The names the field accepts for its values, from its smallest value on.
    pub(super) fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &[
                "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
            ],
            Field::DayOfWeek => &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
            _ => &[],
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Minutes => "minutes",
            Field::Hours => "hours",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
            Field::Year => "year",
        })
    }
}

/// Why a schedule expression or a time zone name was refused. Each message names the
/// expression and the field, value or unit at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Neither `cron(...)`, `rate(...)` nor `at(...)`.
    #[error(
        "schedule expression {} is not one of cron(...), rate(...) or at(...)",
        show(.expression)
    )]
    Form {
        /// The expression as written.
        expression: String,
    },
    /// A cron expression without exactly six fields.
    #[error(
        "{} has {found} fields; cron takes 6: minutes hours day-of-month month day-of-week year",
        show(.expression)
    )]
    FieldCount {
        /// The expression as written.
        expression: String,
        /// How many fields it has.
        found: usize,
    },
    /// A value outside its field's range.
    #[error(
        "{field} value {value} in {} is out of range {}",
        show(.expression),
        range(.field)
    )]
    OutOfRange {
        /// The expression as written.
        expression: String,
        /// The field the value is in.
        field: Field,
        /// The value as written.
        value: String,
    },
    /// A step (`/n`) of zero, or one larger than its field's range.
    #[error(
        "{field} step {step} in {} is {}",
        show(.expression),
        step_fault(.field, .step)
    )]
    Step {
        /// The expression as written.
        expression: String,
        /// The field the step is in.
        field: Field,
        /// The step as written.
        step: String,
    },
    /// Any other mistake in one field.
    #[error("{field} {} in {} is invalid: {reason}", show(.token), show(.expression))]
    Token {
        /// The expression as written.
        expression: String,
        /// The field at fault.
        field: Field,
        /// The offending part of the field.
        token: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Both day fields restricted: the service neither ANDs nor ORs them.
    #[error(
        "{} sets both day-of-month {} and day-of-week {}: exactly one of them must be `?`",
        show(.expression),
        show(.day_of_month),
        show(.day_of_week)
    )]
    BothDayFields {
        /// The expression as written.
        expression: String,
        /// The day-of-month field.
        day_of_month: String,
        /// The day-of-week field.
        day_of_week: String,
    },
    /// `?` in both day fields.
    #[error(
        "{} has `?` in both day-of-month and day-of-week: exactly one of them must be `?`",
        show(.expression)
    )]
    NoDayField {
        /// The expression as written.
        expression: String,
    },
    /// No date from 1970 to 2199 matches.
    #[error(
        "{} never fires: no date in 1970-2199 matches its day-of-month, month, day-of-week \
         and year",
        show(.expression)
    )]
    NeverFires {
        /// The expression as written.
        expression: String,
    },
    /// Every wall time the expression names is skipped in this zone.
    #[error(
        "{} never fires in time zone {}: every date and time it names falls in a gap where \
         the clocks skip forward",
        show(.expression),
        show(.zone)
    )]
    NeverFiresInZone {
        /// The expression as written.
        expression: String,
        /// The zone's name.
        zone: String,
    },
    /// A malformed `rate(...)`.
    #[error("{}: {reason}", show(.expression))]
    Rate {
        /// The expression as written.
        expression: String,
        /// What is wrong, naming the value or unit.
        reason: String,
    },
    /// A malformed `at(...)`.
    #[error("{}: {reason}", show(.expression))]
    At {
        /// The expression as written.
        expression: String,
        /// What is wrong.
        reason: String,
    },
    /// A time zone name the bundled tzdata does not know.
    #[error(
        "unknown time zone {}: name an IANA zone such as `Europe/Berlin` (tzdata {})",
        show(.name),
        super::TZDATA_VERSION
    )]
    UnknownZone {
        /// The name as written.
        name: String,
    },
}

/// `min-max` of a field, with the meaning of day-of-week numbers.
fn range(field: &Field) -> String {
    let (min, max) = field.range();
    match field {
        Field::DayOfWeek => format!("{min}-{max} (1 = SUN, 7 = SAT)"),
        _ => format!("{min}-{max}"),
    }
}

fn step_fault(field: &Field, step: &str) -> String {
    if step.parse::<u64>().is_ok_and(|s| s > 0) {
        format!("larger than the field's range {}", range(field))
    } else {
        "not a whole number of at least 1".to_owned()
    }
}
