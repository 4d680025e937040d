# The care team's pages. English only for now; other languages fall back to these.

team-home-title = Team home
team-panel-size = { $n ->
    [one] One patient in your panel.
   *[other] { $n } patients in your panel.
}
team-unreviewed-title = Readings to review ({ $n })
team-unreviewed-first = Showing the { $n } that most need attention: overdue first, then out of range, then the oldest.
team-unreviewed-none = Every reading has been reviewed.
team-goals-title = Goals waiting for the team's answer ({ $n })
team-goals-none = No goals are waiting for you.
team-activities-title = Overdue team activities ({ $n })
team-activities-none = No team activity is overdue.
team-tasks-title = Tasks due in the next 14 days ({ $n })
team-tasks-none = No tasks are due.
team-distribution-title = Latest HbA1c across the panel
team-distribution-alt = Latest HbA1c of { $n } patients (last 15 months), by band: { $bands }.
team-patients = patients
team-panel-list = Every patient in the panel
col-patient = Patient
col-reading = Reading
col-flags = Why it is here
flag-review-overdue = Not reviewed within 7 days
flag-out-of-range = Out of range
flag-steroid = On a rescue-pack steroid
review-comment-label = Comment for the patient (optional)
review-mark = Mark reviewed
review-team-only = Only the care team marks readings reviewed.
note-reviewed = Marked as reviewed.
goal-target-label = HbA1c target (ADA individualisation)
goal-target-none = No measurable target
hba1c-target-tight = Below 6.5%: where it can be reached safely, without hypoglycaemia
hba1c-target-usual = Below 7.0% (53 mmol/mol): many non-pregnant adults
hba1c-target-relaxed = Below 8.0%: severe hypoglycaemia, major comorbidity or limited life expectancy

# Rescue packs and deadlines.
team-notice-rescue-pack-started = { $patient } has started their rescue pack: reach them within the contact deadline ({ $due }).
team-notice-rescue-pack-not-better = { $patient } is not better after starting their rescue pack: follow up today.
team-notice-rescue-pack-expired = The rescue pack of { $patient } has expired unused: issue a replacement.
team-notice-deadline-escalated = Escalated to you: "{ $task }" for { $patient } was missed by the { $role } and is now due { $due }.
team-notice-deadline-missed = Missed and at the end of its escalation chain: "{ $task }" for { $patient } ({ $role }).
deadline-due = Due
deadline-overdue = Overdue
deadline-escalated = Escalated
deadline-done = Done
rescue-deadlines-title = Team deadlines
rescue-deadlines-none = No deadline is open.
rescue-eligible-reason = Why the patient should have a pack (for example an exacerbation in the past year)
rescue-eligible-record = Record eligibility
rescue-teach-back-record = Record teach-back done
rescue-expiry-label = Expiry date of { $drug }
rescue-dispense-record = Record the pack dispensed
rescue-replace-record = Record the replacement pack issued
rescue-contact-note = What was agreed (optional)
rescue-contact-record = Record contact made
rescue-team-checkin = Record the check-in result:
rescue-outcome-label = Outcome at 14 days
rescue-outcome-record = Record the outcome
rescue-episodes-title = Rescue-pack episodes
rescue-episodes-none = No episode has an open deadline.
rescue-missed-month = { $n ->
    [one] One deadline missed in the last 30 days.
   *[other] { $n } deadlines missed in the last 30 days.
}
rescue-col-started = Started
rescue-col-deadlines = Deadlines
rescue-col-action = Next step
eligibility-by = Eligibility is recorded by a clinician.
eligibility-reason = Say why the patient should have a pack.
eligibility-recorded = Eligibility is already recorded for this patient's pack.
teach-back-by = Teach-back is recorded by a pharmacist.
teach-back-before-eligibility = A clinician records eligibility before teach-back.
teach-back-recorded = Teach-back is already recorded.
dispense-by = A pack is dispensed by a pharmacist.
dispense-before-teaching = A pack is dispensed only after eligibility and teach-back.
dispensed-already = This pack is already dispensed; issue a replacement instead.
dispense-missing-drug = Give an expiry date for every drug of the pack.
dispense-unknown-drug = A drug is not part of this pack.
dispense-expired = An expiry date is not after today: dispense an in-date pack.
dispense-expiry = Give each drug's expiry date as a date.
replace-unused = This pack is unused and in date; a replacement follows a start or an expiry.
contact-by = The care team records the contact.
contacted-already = The contact is already recorded for this episode.
outcome-by = The care team records the outcome.
outcome-recorded = The outcome is already recorded.
outcome-choose = Choose an outcome.
not-expired = Only an unused pack past its expiry can expire.
rescue-unknown-action = That action is not known.
rescue-personalise-intro = What each zone means for this patient (their usual breathing and activity, their peak flow): shown to them under the zone.
rescue-personalise-save = Save the personal action plan

# The quality analyst's page.
analyst-title = Population figures
analyst-lead = { $period }: { $n } patients. Figures only; no chart is opened.
analyst-utilisation-title = Emergency visits and admissions per 1,000 patient-years
analyst-trend-title = Per 1,000 patient-years, by month
analyst-trend-alt = Emergency visits / admissions per 1,000 patient-years by month: { $months }.
analyst-all = All months
analyst-pt-years = Patient-years
analyst-ed = Emergency visits
analyst-ed-copd = Emergency visits, COPD
analyst-admissions = Admissions
analyst-admissions-copd = Admissions, COPD
analyst-readmissions = 30-day readmissions
analyst-evaluation-title = The rescue pack: enrolled against matched patients
analyst-evaluation-figures = { $pairs } enrolled patients with a match; difference-in-differences { $effect } events per patient-year (95% interval { $interval }).
analyst-measures-title = Quality measures
analyst-measures-none = No measure is configured. Name each official measure bundle in coproduce.toml (measure_bundles).
analyst-measure-lower = By calendar year. Lower is better. Each count opens the list of its patients.
analyst-measure-higher = By calendar year. Higher is better. Each count opens the list of its patients.
analyst-measure-chart = Performance rate by year, with its 95% interval
analyst-measure-year = Year
analyst-measure-rate = Rate
analyst-measure-interval = 95% interval
analyst-population-initial-population = Initial population
analyst-population-denominator = Denominator
analyst-population-denominator-exclusion = Exclusions
analyst-population-numerator = Numerator
analyst-back = Back to the population figures
analyst-patients-lead = { $population }, { $year }: { $n } patients. This list is recorded in each patient's access history.
analyst-patients-patient = Patient
analyst-patients-evidence = The records that decided it
analyst-patients-back = Back to the measure
analyst-evaluation-none = No enrolled patient has a full year before and after enrolment and a match yet.
notice-a-patient = A patient
rescue-team-replace = Replace the pack

team-notice-urgent-reading = { $patient } recorded a reading that needs a response today ({ $alert }): respond by { $due }.
team-act-now-title = Needs action now ({ $n })
team-act-now-none = Nothing needs action now.
team-act-now-hint = Most urgent first: dangerous lows, crisis pressures and very high glucose, rescue-pack starts, "worse" check-ins, then overdue deadlines.
team-act-open = Open
team-born = born { $date }
col-due = Due
col-what = What
