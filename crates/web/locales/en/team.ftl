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
review-comment-label = Comment for the patient (optional)
review-mark = Mark reviewed
review-team-only = Only the care team marks readings reviewed.
note-reviewed = Marked as reviewed.
goal-target-label = HbA1c target (ADA individualisation)
goal-target-none = No measurable target
hba1c-target-tight = Below 6.5%: where it can be reached safely, without hypoglycaemia
hba1c-target-usual = Below 7.0% (53 mmol/mol): many non-pregnant adults
hba1c-target-relaxed = Below 8.0%: severe hypoglycaemia, major comorbidity or limited life expectancy
