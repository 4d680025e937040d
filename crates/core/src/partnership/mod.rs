//! Both sides of the partnership measured (CLINICAL.md sections 1 and 7): every promise one
//! side owes the other, due at a time, counted the same way whatever made it.
//!
//! On the team's side a promise is a team-owned Task with a deadline (whatever workflow wrote
//! it: a rescue-pack contact, an urgent reading, a barrier, a referral, a concern, or a kind
//! added later), a team-owned care-plan activity, a patient's reading awaiting review (due a
//! configurable number of days after it was recorded, Task or none) and a patient's goal
//! awaiting the team's answer. On the patient's side it is a patient- or family-owned
//! activity, each time it falls due. A promise counts in the period its first due time falls
//! in, judged as it stands at `now`: kept on time, kept late, or still open past its time;
//! one not yet due, or withdrawn without being owed any more, does not count.

pub mod collaborate;

use crate::access::Role;
use crate::calendar::BusinessCalendar;
use crate::care::plan::{ActivityFacts, Owner, Schedule, Setting, Side};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// The kind of a reading's review (no Task needed).
pub const READING_REVIEW: &str = "reading-review";
/// The kind of the team's answer to a goal the patient's side proposed.
pub const GOAL_ANSWER: &str = "goal-answer";
/// The kind of a care-plan activity's turn.
pub const ACTIVITY: &str = "activity";

/// The patient a promise concerns, as the breakdowns group them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    /// Their care team's name.
    pub team: Option<String>,
    /// Their preferred language (a BCP 47 tag).
    pub language: String,
    pub age_band: String,
    pub sex: String,
}

/// One thing one side owes the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promise {
    /// What it is: a Task's code (any code, known here or not), or one of the kinds above.
    pub kind: String,
    /// Who owes it: the patient, the family, or the team role first asked; `None` for the
    /// team as a whole (a reading any clinical role may review).
    pub owner: Option<Owner>,
    /// Who it was owed to (or by), for the breakdowns by team, language, age band and sex.
    pub person: Option<Arc<Person>>,
    /// When it was first due (escalation moves the deadline on, not this).
    pub due: OffsetDateTime,
    /// When it was kept.
    pub done: Option<OffsetDateTime>,
    /// No longer owed without being kept (cancelled, stopped): not counted.
    pub withdrawn: bool,
    /// Times it moved up its escalation chain.
    pub escalations: u32,
}

impl Promise {
    /// One of the scorecard's own promises (not a Task's): `kind` owed by `owner` (`None`:
    /// the team as a whole), due then, kept or not.
    pub fn owed(
        kind: &str,
        owner: Option<Owner>,
        due: OffsetDateTime,
        done: Option<OffsetDateTime>,
    ) -> Promise {
        Promise {
            kind: kind.to_string(),
            owner,
            person: None,
            due,
            done,
            withdrawn: false,
            escalations: 0,
        }
    }

    /// A reading the patient's side entered: the team owes its review `within` after it
    /// was taken, kept when reviewed.
    pub fn reading_review(
        taken: OffsetDateTime,
        reviewed: Option<OffsetDateTime>,
        within: time::Duration,
    ) -> Promise {
        Promise::owed(READING_REVIEW, None, taken + within, reviewed)
    }

    /// The team's answers owed on a goal ([`goal_answers_owed`]), each due `due_of` the
    /// proposal it answers (the site's time to answer); one still open on a closed goal is
    /// withdrawn.
    pub fn goal_answers(
        steps: &[GoalStep<'_>],
        closed: bool,
        due_of: impl Fn(OffsetDateTime) -> OffsetDateTime,
    ) -> Vec<Promise> {
        goal_answers_owed(steps)
            .into_iter()
            .map(|(from, done)| Promise {
                withdrawn: done.is_none() && closed,
                ..Promise::owed(GOAL_ANSWER, None, due_of(from), done)
            })
            .collect()
    }

    /// The side that owes it.
    pub fn side(&self) -> Side {
        self.owner.map_or(Side::Team, Owner::side)
    }

    /// How it stands at `now`.
    pub fn outcome(&self, now: OffsetDateTime) -> Outcome {
        match self.done {
            _ if self.withdrawn => Outcome::NotCounted,
            Some(d) if d <= self.due => Outcome::OnTime,
            Some(d) => Outcome::Late((d - self.due).whole_seconds()),
            None if now > self.due => Outcome::Overdue((now - self.due).whole_seconds()),
            None => Outcome::NotCounted,
        }
    }
}

/// A promise as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    OnTime,
    /// Kept, this many seconds after its time.
    Late(i64),
    /// Still open, this many seconds past its time.
    Overdue(i64),
    /// Not yet due, or withdrawn.
    NotCounted,
}

/// The turns of a care-plan activity, from its facts and the times it was marked done, as
/// (due, kept) pairs: a one-off is due by its date and kept by its first mark; a repeating
/// one is next due a cadence after it was added or last kept. A repeating activity that
/// was stopped owes nothing after its last mark.
pub fn activity_turns(
    facts: &ActivityFacts,
    done: &[OffsetDateTime],
    now: OffsetDateTime,
) -> Vec<(OffsetDateTime, Option<OffsetDateTime>)> {
    let mut done = done.to_vec();
    done.sort();
    match facts.schedule {
        Schedule::By(due) => {
            let kept = done.first().copied();
            if kept.is_none() && facts.finished {
                return Vec::new();
            }
            vec![(due, kept)]
        }
        Schedule::Every(cadence) => {
            let mut turns = Vec::new();
            let mut from = facts.added;
            // The marks are in order: each turn's is the first after the one before.
            let mut marks = done.into_iter().peekable();
            loop {
                let due = cadence.after(from);
                while marks.next_if(|d| *d <= from).is_some() {}
                match marks.next() {
                    Some(d) => {
                        turns.push((due, Some(d)));
                        from = d;
                    }
                    None => {
                        if !facts.finished && due < now {
                            turns.push((due, None));
                        }
                        return turns;
                    }
                }
            }
        }
    }
}

/// Counts of the promises of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub on_time: usize,
    pub late: usize,
    pub overdue: usize,
    /// Promises that moved up their chain at least once.
    pub escalated: usize,
    /// Steps up the chain, all promises together.
    pub escalations: u64,
    /// Seconds past their time of every promise not kept on time (kept late: how late;
    /// still open: how late so far), shortest first: a scorecard is the same whatever order
    /// its promises were read in.
    lateness: Vec<i64>,
}

impl Tally {
    fn add(&mut self, p: &Promise, now: OffsetDateTime) {
        match p.outcome(now) {
            Outcome::OnTime => self.on_time += 1,
            Outcome::Late(s) => {
                self.late += 1;
                self.lateness.push(s);
            }
            Outcome::Overdue(s) => {
                self.overdue += 1;
                self.lateness.push(s);
            }
            Outcome::NotCounted => return,
        }
        if p.escalations > 0 {
            self.escalated += 1;
            self.escalations += u64::from(p.escalations);
        }
    }

    /// Adds another group's counts (a part of the population counted apart).
    pub fn merge(&mut self, other: Tally) {
        self.on_time += other.on_time;
        self.late += other.late;
        self.overdue += other.overdue;
        self.escalated += other.escalated;
        self.escalations += other.escalations;
        self.lateness.extend(other.lateness);
    }

    /// Promises counted: kept on time or late, or open past their time.
    pub fn counted(&self) -> usize {
        self.on_time + self.late + self.overdue
    }

    /// The share kept on time, in percent (none when nothing counted).
    pub fn on_time_pct(&self) -> Option<f64> {
        let n = self.counted();
        (n > 0).then(|| 100.0 * self.on_time as f64 / n as f64)
    }

    /// The median lateness in hours of the promises not kept on time (the middle one, or the
    /// mean of the two middle ones).
    pub fn median_late_hours(&self) -> Option<f64> {
        let s = &self.lateness;
        let n = s.len();
        if n == 0 {
            return None;
        }
        let secs = if n % 2 == 1 {
            s[n / 2] as f64
        } else {
            (s[n / 2 - 1] + s[n / 2]) as f64 / 2.0
        };
        Some(secs / 3600.0)
    }
}

/// How to break the promises down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Kind,
    Team,
    Role,
    /// The month of the first due time, in the site's time zone.
    Month,
    /// The patient's preferred language, age band or sex (the equity breakdowns).
    Language,
    AgeBand,
    Sex,
}

impl By {
    pub const ALL: [By; 7] = [
        By::Kind,
        By::Team,
        By::Role,
        By::Month,
        By::Language,
        By::AgeBand,
        By::Sex,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            By::Kind => "kind",
            By::Team => "team",
            By::Role => "role",
            By::Month => "month",
            By::Language => "language",
            By::AgeBand => "age",
            By::Sex => "sex",
        }
    }

    pub fn parse(s: &str) -> Option<By> {
        By::ALL.into_iter().find(|b| b.as_str() == s)
    }

    fn key<'a>(self, p: &'a Promise, calendar: &BusinessCalendar) -> Cow<'a, str> {
        let person = p.person.as_deref();
        match self {
            By::Kind => Cow::Borrowed(p.kind.as_str()),
            By::Team => person
                .and_then(|x| x.team.as_deref())
                .unwrap_or("(no care team)")
                .into(),
            By::Language => person.map_or("unknown", |x| x.language.as_str()).into(),
            By::AgeBand => person.map_or("unknown", |x| x.age_band.as_str()).into(),
            By::Sex => person.map_or("unknown", |x| x.sex.as_str()).into(),
            By::Role => p.owner.map_or("care-team", Owner::as_str).into(),
            By::Month => {
                let local = calendar.local_time(p.due);
                format!("{:04}-{:02}", local.year(), u8::from(local.month())).into()
            }
        }
    }
}

/// What a period's promises come to, each side apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard {
    pub team: Tally,
    pub patient: Tally,
    /// The team's side broken down, key in order.
    pub team_by: BTreeMap<String, Tally>,
    /// The patient's side broken down the same way.
    pub patient_by: BTreeMap<String, Tally>,
    pub by: By,
    /// Goals on the plans, and those both sides agreed.
    pub goals: usize,
    pub goals_agreed: usize,
}

impl Scorecard {
    /// A scorecard with nothing counted.
    pub fn empty(by: By) -> Scorecard {
        Scorecard {
            team: Tally::default(),
            patient: Tally::default(),
            team_by: BTreeMap::new(),
            patient_by: BTreeMap::new(),
            by,
            goals: 0,
            goals_agreed: 0,
        }
    }

    /// The share of goals both sides agreed, in percent.
    pub fn goals_agreed_pct(&self) -> Option<f64> {
        (self.goals > 0).then(|| 100.0 * self.goals_agreed as f64 / self.goals as f64)
    }
}

/// The facts about one goal the scorecard reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoalFacts {
    /// Both sides have agreed it (now or before it was closed).
    pub agreed: bool,
}

impl GoalFacts {
    /// A goal agreed now, or whose story holds an agreement (one closed since).
    pub fn of(agreed_now: bool, steps: &[GoalStep<'_>]) -> GoalFacts {
        GoalFacts {
            agreed: agreed_now || steps.iter().any(|s| s.event == "agreed"),
        }
    }
}

/// The scorecard of the promises first due in `[from, to)`, as they stand at `now`.
pub fn scorecard(
    promises: &[Promise],
    goals: &[GoalFacts],
    from: OffsetDateTime,
    to: OffsetDateTime,
    now: OffsetDateTime,
    by: By,
    calendar: &BusinessCalendar,
) -> Scorecard {
    let mut scoring = Scoring::new(from, to, now, &[by]);
    for p in promises {
        scoring.add(p, calendar);
    }
    for g in goals {
        scoring.add_goal(*g);
    }
    scoring
        .finish()
        .pop()
        .unwrap_or_else(|| Scorecard::empty(by))
}

/// Scorecards in several breakdowns at once, filled one promise at a time, so that a
/// population's promises need not all be held together; parts filled apart (a batch of
/// patients each) merge.
#[derive(Debug, Clone)]
pub struct Scoring {
    from: OffsetDateTime,
    to: OffsetDateTime,
    now: OffsetDateTime,
    cards: Vec<Scorecard>,
}

impl Scoring {
    /// Promises first due in `[from, to)`, as they stand at `now`, broken down each way in
    /// `by`.
    pub fn new(from: OffsetDateTime, to: OffsetDateTime, now: OffsetDateTime, by: &[By]) -> Self {
        Scoring {
            from,
            to,
            now,
            cards: by.iter().map(|b| Scorecard::empty(*b)).collect(),
        }
    }

    /// Counts a promise, if it fell due in the period and counts at `now`.
    pub fn add(&mut self, p: &Promise, calendar: &BusinessCalendar) {
        if p.due < self.from || p.due >= self.to || p.outcome(self.now) == Outcome::NotCounted {
            return;
        }
        for card in &mut self.cards {
            let (all, split) = match p.side() {
                Side::Team => (&mut card.team, &mut card.team_by),
                Side::Patient => (&mut card.patient, &mut card.patient_by),
            };
            all.add(p, self.now);
            let key = card.by.key(p, calendar);
            match split.get_mut(key.as_ref()) {
                Some(t) => t.add(p, self.now),
                None => split.entry(key.into_owned()).or_default().add(p, self.now),
            }
        }
    }

    /// Counts a goal on the plans.
    pub fn add_goal(&mut self, g: GoalFacts) {
        for card in &mut self.cards {
            card.goals += 1;
            card.goals_agreed += usize::from(g.agreed);
        }
    }

    /// Adds what another part counted (with the same period and breakdowns).
    pub fn merge(&mut self, other: Scoring) {
        for (card, theirs) in self.cards.iter_mut().zip(other.cards) {
            card.team.merge(theirs.team);
            card.patient.merge(theirs.patient);
            for (mine, their) in [
                (&mut card.team_by, theirs.team_by),
                (&mut card.patient_by, theirs.patient_by),
            ] {
                for (k, t) in their {
                    mine.entry(k).or_default().merge(t);
                }
            }
            card.goals += theirs.goals;
            card.goals_agreed += theirs.goals_agreed;
        }
    }

    /// The scorecards, one per breakdown asked for, in that order.
    pub fn finish(self) -> Vec<Scorecard> {
        let mut cards = self.cards;
        for card in &mut cards {
            let tallies = [&mut card.team, &mut card.patient]
                .into_iter()
                .chain(card.team_by.values_mut())
                .chain(card.patient_by.values_mut());
            for t in tallies {
                t.lateness.sort_unstable();
            }
        }
        cards
    }
}

/// Who owns a plan's activities: the patient's side (the patient or family) and the team.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    pub patient: usize,
    pub team: usize,
}

impl Ownership {
    pub fn total(&self) -> usize {
        self.patient + self.team
    }

    /// The share the patient and family own, in percent.
    pub fn patient_pct(&self) -> Option<f64> {
        let n = self.total();
        (n > 0).then(|| 100.0 * self.patient as f64 / n as f64)
    }

    fn add(&mut self, owner: Owner) {
        match owner.side() {
            Side::Patient => self.patient += 1,
            Side::Team => self.team += 1,
        }
    }
}

/// The coproduction spectrum of a plan (or of many): who owns the open activities in each
/// setting, from low to high patient agency (every setting, empty ones too), and overall.
pub fn spectrum(activities: &[(Setting, Owner)]) -> (Vec<(Setting, Ownership)>, Ownership) {
    let mut all = Ownership::default();
    let by = Setting::ALL
        .into_iter()
        .map(|setting| {
            let mut o = Ownership::default();
            for (_, owner) in activities.iter().filter(|(s, _)| *s == setting) {
                o.add(*owner);
                all.add(*owner);
            }
            (setting, o)
        })
        .collect();
    (by, all)
}

/// Whether a Task's status withdraws its promise (no longer owed, not counted).
pub fn withdrawn(status: &str) -> bool {
    matches!(
        status,
        "cancelled" | "rejected" | "failed" | "entered-in-error"
    )
}

/// A step in a goal's story as the scorecard reads it: when, which side spoke (if known),
/// and what it said (`proposed`, `agreed`, `change-suggested`, `declined`, `note`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoalStep<'a> {
    pub at: OffsetDateTime,
    pub side: Option<Side>,
    pub event: &'a str,
}

/// The answers the team owed on a goal, as (owed from, kept): each proposal or suggested
/// change by the patient's side (the first of a run) is kept by the team's next word on it,
/// whatever it says (a note is not an answer). The last may still be open.
pub fn goal_answers_owed(steps: &[GoalStep]) -> Vec<(OffsetDateTime, Option<OffsetDateTime>)> {
    let mut steps = steps.to_vec();
    steps.sort_by_key(|s| s.at);
    let mut out = Vec::new();
    let mut waiting: Option<OffsetDateTime> = None;
    for s in steps {
        match s.side {
            Some(Side::Patient) if matches!(s.event, "proposed" | "change-suggested") => {
                waiting.get_or_insert(s.at);
            }
            Some(Side::Team) if s.event != "note" => {
                if let Some(from) = waiting.take() {
                    out.push((from, Some(s.at)));
                }
            }
            _ => {}
        }
    }
    out.extend(waiting.map(|from| (from, None)));
    out
}

/// The team role a promise is owed by, for one a team role owns.
pub fn team_owner(role: Role) -> Option<Owner> {
    role.is_team().then_some(Owner::Team(role))
}

#[cfg(test)]
mod tests;
