-- ASQ-3 questionnaires of the configured 2–2½ year review intervals, linked to the child
-- key. Scores are as loaded: raw scores with 4–5 items already scaled by 6/items, domains
-- with 3 or fewer items answered already null (W021). One review per child per period is
-- chosen by the metric, which knows the period.
select
    link.child_key,
    a.review_date,
    a.questionnaire_months,
    a.communication,
    a.gross_motor,
    a.fine_motor,
    a.problem_solving,
    a.personal_social,
    a.in_chis
from asq3 as a
inner join person_link as link
    on link.source = a._source
    and link.source_person_key = a.key_nhs
cross join metric_params as p
where array_has(p.asq_review_questionnaires, cast(a.questionnaire_months as bigint))
