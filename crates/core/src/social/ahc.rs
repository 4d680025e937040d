//! The AHC HRSN core items (10 questions in 6 domains), their LOINC answer codes, and the
//! rule that makes each domain positive:
//!
//! | domain | item (LOINC) | positive when |
//! |---|---|---|
//! | living situation | 71802-3 | worried about losing it, or no steady place |
//! | housing quality | 96778-6 (multi-select) | any problem ("none of the above" alone is negative) |
//! | food | 88122-7, 88123-5 | either item "often" or "sometimes true" |
//! | transportation | 93030-5 | yes |
//! | utilities | 96779-4 | yes, or already shut off |
//! | interpersonal safety | 95618-5, 95617-7, 95616-9, 95615-1 (never 1 … frequently 5) | the total (95614-4) is greater than 10 |
//!
//! A skipped item is not an answer: its domain stays undetermined unless the other item of the
//! domain decides it (food), and the safety total is known only when all four are answered, but
//! it is already positive when the answered ones pass 10, and already negative when even the
//! most the skipped ones could add would leave it at 10 or less.

use std::fmt;

/// The instrument's LOINC panel code.
pub const PANEL: &str = "96777-8";
/// The interpersonal-safety total.
pub const SAFETY_TOTAL: &str = "95614-4";
/// The total above which interpersonal safety is positive.
pub const SAFETY_THRESHOLD: u8 = 10;

/// A domain of need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    LivingSituation,
    HousingQuality,
    Food,
    Transportation,
    Utilities,
    InterpersonalSafety,
}

impl Domain {
    pub const ALL: [Domain; 6] = [
        Domain::LivingSituation,
        Domain::HousingQuality,
        Domain::Food,
        Domain::Transportation,
        Domain::Utilities,
        Domain::InterpersonalSafety,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Domain::LivingSituation => "living-situation",
            Domain::HousingQuality => "housing-quality",
            Domain::Food => "food",
            Domain::Transportation => "transportation",
            Domain::Utilities => "utilities",
            Domain::InterpersonalSafety => "interpersonal-safety",
        }
    }
}

/// The Gravity SDOH Clinical Care IG's temporary code system: `sdoh` and the domains.
pub const SDOHCC_CODES: &str =
    "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes";

impl Domain {
    /// The IG's SDOH categories for this domain's questions, whatever the answer (its
    /// guidance on assessment instruments): living situation is both homelessness and
    /// housing instability; interpersonal safety has no category of its own yet.
    pub fn categories(self) -> &'static [&'static str] {
        match self {
            Domain::LivingSituation => &["homelessness", "housing-instability"],
            Domain::HousingQuality => &["inadequate-housing"],
            Domain::Food => &["food-insecurity"],
            Domain::Transportation => &["transportation-insecurity"],
            Domain::Utilities => &["utility-insecurity"],
            Domain::InterpersonalSafety => &["sdoh-category-unspecified"],
        }
    }

    /// The domain in plain English (the category's text where the code says nothing).
    pub fn english(self) -> &'static str {
        match self {
            Domain::LivingSituation => "Living situation",
            Domain::HousingQuality => "Problems with the place they live",
            Domain::Food => "Food",
            Domain::Transportation => "Transportation",
            Domain::Utilities => "Utilities",
            Domain::InterpersonalSafety => "Interpersonal safety",
        }
    }

    /// The ICD-10-CM code of the health concern a positive domain proposes, by the answers
    /// given (no steady place to live is homelessness, worry about losing it is housing
    /// instability); interpersonal safety has no code of its own here, only its text.
    pub fn icd10(self, answers: &[&str]) -> Option<(&'static str, &'static str)> {
        match self {
            Domain::LivingSituation if answers.contains(&"LA31995-6") => {
                Some(("Z59.00", "Homelessness, unspecified"))
            }
            Domain::LivingSituation => Some((
                "Z59.811",
                "Housing instability, housed, with risk of homelessness",
            )),
            Domain::HousingQuality => Some(("Z59.10", "Inadequate housing, unspecified")),
            Domain::Food => Some(("Z59.41", "Food insecurity")),
            Domain::Transportation => Some(("Z59.82", "Transportation insecurity")),
            Domain::Utilities => Some(("Z59.12", "Inadequate housing utilities")),
            Domain::InterpersonalSafety => None,
        }
    }

    pub fn parse(s: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// An answer option: its LA code, whether it is positive on its own, and its points (the
/// safety items' 1 to 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub code: &'static str,
    pub positive: bool,
    pub points: u8,
}

const fn a(code: &'static str, positive: bool) -> Answer {
    Answer {
        code,
        positive,
        points: 0,
    }
}

const fn p(code: &'static str, points: u8) -> Answer {
    Answer {
        code,
        positive: false,
        points,
    }
}

/// A question of the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// Its LOINC code, which is also its linkId in the Questionnaire.
    pub code: &'static str,
    pub domain: Domain,
    /// Whether more than one answer may be chosen.
    pub multiple: bool,
    pub answers: &'static [Answer],
}

/// "None of the above" on the housing question: negative, and alone.
pub const NONE_OF_THE_ABOVE: &str = "LA9-3";

const OFTEN_SOMETIMES_NEVER: &[Answer] = &[
    a("LA28397-0", true),
    a("LA6729-3", true),
    a("LA28398-8", false),
];

const NEVER_TO_FREQUENTLY: &[Answer] = &[
    p("LA6270-8", 1),
    p("LA10066-1", 2),
    p("LA10082-8", 3),
    p("LA16644-9", 4),
    p("LA6482-9", 5),
];

/// The ten core items, in the screen's order.
pub const ITEMS: [Item; 10] = [
    Item {
        code: "71802-3",
        domain: Domain::LivingSituation,
        multiple: false,
        answers: &[
            a("LA31993-1", false),
            a("LA31994-9", true),
            a("LA31995-6", true),
        ],
    },
    Item {
        code: "96778-6",
        domain: Domain::HousingQuality,
        multiple: true,
        answers: &[
            a("LA31996-4", true),
            a("LA28580-1", true),
            a("LA31997-2", true),
            a("LA31998-0", true),
            a("LA31999-8", true),
            a("LA32000-4", true),
            a("LA32001-2", true),
            a(NONE_OF_THE_ABOVE, false),
        ],
    },
    Item {
        code: "88122-7",
        domain: Domain::Food,
        multiple: false,
        answers: OFTEN_SOMETIMES_NEVER,
    },
    Item {
        code: "88123-5",
        domain: Domain::Food,
        multiple: false,
        answers: OFTEN_SOMETIMES_NEVER,
    },
    Item {
        code: "93030-5",
        domain: Domain::Transportation,
        multiple: false,
        answers: &[a("LA33-6", true), a("LA32-8", false)],
    },
    Item {
        code: "96779-4",
        domain: Domain::Utilities,
        multiple: false,
        answers: &[a("LA33-6", true), a("LA32-8", false), a("LA32002-0", true)],
    },
    Item {
        code: "95618-5",
        domain: Domain::InterpersonalSafety,
        multiple: false,
        answers: NEVER_TO_FREQUENTLY,
    },
    Item {
        code: "95617-7",
        domain: Domain::InterpersonalSafety,
        multiple: false,
        answers: NEVER_TO_FREQUENTLY,
    },
    Item {
        code: "95616-9",
        domain: Domain::InterpersonalSafety,
        multiple: false,
        answers: NEVER_TO_FREQUENTLY,
    },
    Item {
        code: "95615-1",
        domain: Domain::InterpersonalSafety,
        multiple: false,
        answers: NEVER_TO_FREQUENTLY,
    },
];

/// The item with this question code.
pub fn item(code: &str) -> Option<&'static Item> {
    ITEMS.iter().find(|i| i.code == code)
}

/// Why a response cannot be scored, with the question it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenRefused {
    pub question: String,
    pub english: String,
}

impl fmt::Display for ScreenRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.question, self.english)
    }
}

impl std::error::Error for ScreenRefused {}

/// One domain's result: whether anything was answered, and positive, negative or undetermined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainResult {
    pub domain: Domain,
    /// Some(true) positive, Some(false) negative, None not determined (skipped).
    pub positive: Option<bool>,
}

/// A scored screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    /// Each of the six domains, in order.
    pub domains: Vec<DomainResult>,
    /// The interpersonal-safety total, when all four items were answered.
    pub safety_total: Option<u8>,
    /// The items answered, and those skipped (by question code).
    pub answered: Vec<&'static str>,
    pub skipped: Vec<&'static str>,
}

impl Screen {
    /// The domains that screened positive.
    pub fn positive(&self) -> Vec<Domain> {
        self.domains
            .iter()
            .filter(|d| d.positive == Some(true))
            .map(|d| d.domain)
            .collect()
    }

    pub fn domain(&self, d: Domain) -> Option<bool> {
        self.domains
            .iter()
            .find(|r| r.domain == d)
            .and_then(|r| r.positive)
    }

    /// Whether the answer to one item is positive on its own (for an Observation's
    /// interpretation); None when it was skipped or scores only through a total.
    pub fn item_positive(item: &Item, chosen: &[&str]) -> Option<bool> {
        if chosen.is_empty() || item.domain == Domain::InterpersonalSafety {
            return None;
        }
        Some(
            chosen
                .iter()
                .any(|c| item.answers.iter().any(|a| a.code == *c && a.positive)),
        )
    }
}

/// Scores a response to the AHC HRSN core items: `(question code, chosen answer codes)` per
/// answered item; a question missing or with no answer is skipped. Refused: a question not
/// on this instrument, an answer not offered for its question, two answers to a single-answer
/// question, "none of the above" beside a problem, a question answered twice.
pub fn score(response: &[(&str, Vec<&str>)]) -> Result<Screen, ScreenRefused> {
    let refuse = |question: &str, english: &str| ScreenRefused {
        question: question.to_string(),
        english: english.to_string(),
    };
    let mut chosen: Vec<(&'static Item, Vec<&Answer>)> = Vec::new();
    for (question, answers) in response {
        let item = item(question)
            .ok_or_else(|| refuse(question, "not a question of the AHC HRSN core screen"))?;
        if chosen.iter().any(|(i, _)| i.code == item.code) {
            return Err(refuse(question, "answered twice"));
        }
        let mut picked = Vec::new();
        for code in answers {
            let answer = item
                .answers
                .iter()
                .find(|a| a.code == *code)
                .ok_or_else(|| refuse(question, &format!("{code} is not an answer to it")))?;
            if !picked.iter().any(|p: &&Answer| p.code == answer.code) {
                picked.push(answer);
            }
        }
        if !item.multiple && picked.len() > 1 {
            return Err(refuse(question, "takes one answer"));
        }
        if picked.len() > 1 && picked.iter().any(|a| a.code == NONE_OF_THE_ABOVE) {
            return Err(refuse(
                question,
                "\"none of the above\" cannot go with a problem",
            ));
        }
        if !picked.is_empty() {
            chosen.push((item, picked));
        }
    }
    let answered: Vec<&'static str> = ITEMS
        .iter()
        .filter(|i| chosen.iter().any(|(c, _)| c.code == i.code))
        .map(|i| i.code)
        .collect();
    let skipped: Vec<&'static str> = ITEMS
        .iter()
        .map(|i| i.code)
        .filter(|c| !answered.contains(c))
        .collect();
    let domains = Domain::ALL
        .iter()
        .map(|&domain| {
            let items: Vec<&(&Item, Vec<&Answer>)> =
                chosen.iter().filter(|(i, _)| i.domain == domain).collect();
            let expected = ITEMS.iter().filter(|i| i.domain == domain).count();
            let positive = if domain == Domain::InterpersonalSafety {
                let sum: u32 = items
                    .iter()
                    .flat_map(|(_, a)| a.iter().map(|a| u32::from(a.points)))
                    .sum();
                let missing = (expected - items.len()) as u32;
                let threshold = u32::from(SAFETY_THRESHOLD);
                if sum + missing > threshold {
                    Some(true)
                } else if sum + 5 * missing <= threshold {
                    Some(false)
                } else {
                    None
                }
            } else if items.iter().any(|(_, a)| a.iter().any(|a| a.positive)) {
                Some(true)
            } else if items.len() == expected {
                Some(false)
            } else {
                None
            };
            DomainResult { domain, positive }
        })
        .collect();
    let safety: Vec<u8> = chosen
        .iter()
        .filter(|(i, _)| i.domain == Domain::InterpersonalSafety)
        .flat_map(|(_, a)| a.iter().map(|a| a.points))
        .collect();
    Ok(Screen {
        domains,
        safety_total: (safety.len() == 4).then(|| safety.iter().sum()),
        answered,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(question: &str, answer: &str) -> Screen {
        score(&[(question, vec![answer])]).unwrap()
    }

    fn safety(points: [u8; 4]) -> Screen {
        let codes = [
            "LA6270-8",
            "LA10066-1",
            "LA10082-8",
            "LA16644-9",
            "LA6482-9",
        ];
        let qs = ["95618-5", "95617-7", "95616-9", "95615-1"];
        let response: Vec<(&str, Vec<&str>)> = qs
            .iter()
            .zip(points)
            .map(|(q, p)| (*q, vec![codes[usize::from(p) - 1]]))
            .collect();
        score(&response).unwrap()
    }

    #[test]
    fn every_domains_positive_and_negative_answers() {
        use Domain::*;
        for (q, yes, no, d) in [
            ("71802-3", "LA31994-9", "LA31993-1", LivingSituation),
            ("71802-3", "LA31995-6", "LA31993-1", LivingSituation),
            ("93030-5", "LA33-6", "LA32-8", Transportation),
            ("96779-4", "LA33-6", "LA32-8", Utilities),
            ("96779-4", "LA32002-0", "LA32-8", Utilities),
            ("96778-6", "LA28580-1", NONE_OF_THE_ABOVE, HousingQuality),
        ] {
            assert_eq!(one(q, yes).domain(d), Some(true), "{q} {yes}");
            assert_eq!(one(q, no).domain(d), Some(false), "{q} {no}");
        }
        // Food: either item often or sometimes true; negative only when both are never true.
        for yes in ["LA28397-0", "LA6729-3"] {
            assert_eq!(one("88122-7", yes).domain(Food), Some(true));
            assert_eq!(one("88123-5", yes).domain(Food), Some(true));
        }
        assert_eq!(
            one("88122-7", "LA28398-8").domain(Food),
            None,
            "one item left"
        );
        let both_never = score(&[
            ("88122-7", vec!["LA28398-8"]),
            ("88123-5", vec!["LA28398-8"]),
        ])
        .unwrap();
        assert_eq!(both_never.domain(Food), Some(false));
    }

    #[test]
    fn housing_none_alone_is_negative_and_cannot_go_with_a_problem() {
        let none = one("96778-6", NONE_OF_THE_ABOVE);
        assert_eq!(none.domain(Domain::HousingQuality), Some(false));
        let two = score(&[("96778-6", vec!["LA31996-4", "LA32001-2"])]).unwrap();
        assert_eq!(two.domain(Domain::HousingQuality), Some(true));
        let both = score(&[("96778-6", vec!["LA31996-4", NONE_OF_THE_ABOVE])]).unwrap_err();
        assert_eq!(both.question, "96778-6");
    }

    #[test]
    fn the_safety_total_is_positive_above_ten() {
        let ten = safety([1, 2, 3, 4]);
        assert_eq!(ten.safety_total, Some(10));
        assert_eq!(ten.domain(Domain::InterpersonalSafety), Some(false));
        let eleven = safety([2, 2, 3, 4]);
        assert_eq!(eleven.safety_total, Some(11));
        assert_eq!(eleven.domain(Domain::InterpersonalSafety), Some(true));
        assert_eq!(safety([1, 1, 1, 1]).safety_total, Some(4));
        assert_eq!(safety([5, 5, 5, 5]).safety_total, Some(20));
    }

    #[test]
    fn skipped_items_leave_what_they_could_change_undetermined() {
        // Three answered, 4 + 4 + 3 = 11 already: positive whatever the fourth.
        let partial = score(&[
            ("95618-5", vec!["LA16644-9"]),
            ("95617-7", vec!["LA16644-9"]),
            ("95616-9", vec!["LA10082-8"]),
        ])
        .unwrap();
        assert_eq!(partial.domain(Domain::InterpersonalSafety), Some(true));
        assert_eq!(partial.safety_total, None, "no total without all four");
        assert_eq!(partial.skipped.len(), 7);
        // 1 + 1 + 1 and one skipped: at most 8, negative.
        let low = score(&[
            ("95618-5", vec!["LA6270-8"]),
            ("95617-7", vec!["LA6270-8"]),
            ("95616-9", vec!["LA6270-8"]),
        ])
        .unwrap();
        assert_eq!(low.domain(Domain::InterpersonalSafety), Some(false));
        // 3 + 3 and two skipped: between 8 and 16, undetermined.
        let open = score(&[
            ("95618-5", vec!["LA10082-8"]),
            ("95617-7", vec!["LA10082-8"]),
        ])
        .unwrap();
        assert_eq!(open.domain(Domain::InterpersonalSafety), None);
        // A question sent with no answer is skipped.
        let empty_answer = score(&[("93030-5", vec![])]).unwrap();
        assert_eq!(empty_answer.domain(Domain::Transportation), None);
        assert!(empty_answer.skipped.contains(&"93030-5"));
    }

    #[test]
    fn a_response_with_no_answers_determines_nothing() {
        let s = score(&[]).unwrap();
        assert!(s.positive().is_empty());
        assert!(s.domains.iter().all(|d| d.positive.is_none()));
        assert_eq!(s.skipped.len(), 10);
        assert_eq!(s.safety_total, None);
    }

    #[test]
    fn answers_are_checked_against_their_own_question() {
        // PRAPARE's answer to its own 71802-3 is not an AHC answer.
        let prapare = score(&[("71802-3", vec!["LA30190-5"])]).unwrap_err();
        assert_eq!(prapare.question, "71802-3");
        // "Already shut off" belongs to utilities, not to transportation.
        assert!(score(&[("93030-5", vec!["LA32002-0"])]).is_err());
        assert!(score(&[("12345-6", vec!["LA33-6"])]).is_err());
        assert!(score(&[("93030-5", vec!["LA33-6", "LA32-8"])]).is_err());
        assert!(score(&[("93030-5", vec!["LA33-6"]), ("93030-5", vec!["LA32-8"])]).is_err());
        // The same answer chosen twice counts once.
        assert!(score(&[("96778-6", vec!["LA28580-1", "LA28580-1"])]).is_ok());
    }

    #[test]
    fn an_items_own_answer_says_whether_it_is_positive() {
        let transport = item("93030-5").unwrap();
        assert_eq!(Screen::item_positive(transport, &["LA33-6"]), Some(true));
        assert_eq!(Screen::item_positive(transport, &["LA32-8"]), Some(false));
        assert_eq!(Screen::item_positive(transport, &[]), None);
        let hurt = item("95618-5").unwrap();
        assert_eq!(
            Screen::item_positive(hurt, &["LA6482-9"]),
            None,
            "through the total"
        );
    }
}
