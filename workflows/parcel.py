"""The law's chain for one parcel (DOMAIN.md "Lifecycle"), stage by stage.

`run` reads like the procedure: each `await self.inbox.step(...)` waits for the people
who owe that step (landflow/procedure.py says who, with which actions and deadline), and
each `await self.rules(...)` decides the rules of that moment in the `decide` activity,
so the decisions live in the history. The update protocol is `workflows/inbox.py`; the
checks are `workflows/gate.py`. A parcel continues as new long before Temporal's limits
and fast-forwards through its journal (`workflows/journal.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RawValue

# Passed through, so the sandbox does not execute them again for every run. A submodule
# of this module's own package is imported as `import workflows.x as x`: the sandbox
# reloads the package with this module, and `from workflows import x` would then load x
# again inside it, bypassing the pass-through (a third of a replay's time, measured).
with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    import workflows.visibility as visibility
    from landflow import signing
    from landflow.decisions import Decision, DecisionBrief
    from landflow.facts import Party, Target
    from landflow.messages import (
        CHANGE_LIST,
        DECIDE,
        LOAD_POLICY,
        NOTIFY,
        PARCEL_WORKFLOW,
        PROJECT,
        STARTED_UPDATE,
        STATE_QUERY,
        ActionOutcome,
        ActionRequest,
        ActivityRef,
        DecideRequest,
        ListChange,
        Notice,
        NoticeKind,
        ParcelProjection,
        ParcelStart,
        PolicyRequest,
        Refusal,
        StartedView,
        TaskRow,
    )
    from landflow.policy import Policy
    from landflow.procedure import PROCEDURE, Amendment, RulePoint
    from landflow.state import (
        ActionEntry,
        JournalEntry,
        ListMembership,
        ParcelOutcome,
        ParcelState,
        StageVisit,
        Task,
    )
    from landflow.vocabulary import Role, Stage, Step
    from workflows.gate import Claim, next_actions, reject, transport_assignees
    from workflows.inbox import Answered, Inbox
    from workflows.journal import Journal

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Patches (workflow.patched): what running parcels started before a change keep doing.
STARTED_AFTER_PROJECTION = "started-answers-after-the-first-projection"
In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out")


class Decided:
    """The decisions of one rule point, by rule."""

    def __init__(self, decisions: list[DecisionBrief]) -> None:
        self.by_rule = {d.rule: d for d in decisions}

    def outcome(self, rule: str) -> str | None:
        decision = self.by_rule.get(rule)
        return decision.outcome if decision else None

    def __getitem__(self, rule: str) -> DecisionBrief:
        return self.by_rule[rule]


@workflow.defn(name=PARCEL_WORKFLOW)
class ParcelWorkflow:
    @workflow.init
    def __init__(self, start: ParcelStart) -> None:
        info = workflow.info()
        facts = start.facts
        self.state = start.carried or ParcelState(
            parcel_id=facts["parcel_id"],
            procedure=PARCEL_WORKFLOW,
            run_id=info.first_execution_run_id,
            facts=facts,
            district=facts["district"],
            stages=[StageVisit(stage=Stage.intake, entered=workflow.now())],
            restart_of=start.restart.previous_run_id if start.restart else None,
            amendments=list(start.amendments or []),
        )
        self.policy: Policy | None = start.policy
        self.journal = Journal(self.state.journal)
        # A continued run opens its inbox at once: an action may arrive for the carried
        # open step before the procedure has fast-forwarded to it.
        self._inbox: Inbox | None = (
            Inbox(self.state, self.policy, self.journal, self) if self.policy else None
        )
        self._searchable: dict[str, object] = (
            visibility.current_values(self.state)
            if start.carried
            else visibility.initial_values(unset=self.amended(Amendment.quiet_intake))
        )

    @property
    def inbox(self) -> Inbox:
        if self._inbox is None:
            raise RuntimeError("the inbox opens once the policy is loaded")  # a bug: retry
        return self._inbox

    # --- the procedure -------------------------------------------------------------

    @workflow.run
    async def run(self, start: ParcelStart) -> ParcelOutcome:
        await self._begin(start)
        decided = await self.rules(RulePoint.intake)  # R3, R6 (and R1, R2 unscreened)
        if decided.outcome("R3") == "required":  # BJ 16
            self.enter(Stage.closure_screening)
            screening = await self.inbox.step(Step.closure_screening)
            suspected = screening.value("result") == "suspected"
            if suspected:
                await self.list_enter(
                    "suspected", "suspected-contaminated-parcel file", "BJ 16, 18"
                )
            decided = await self.rules(RulePoint.closure_screening, suspected_file=suspected)
        if decided.outcome("R1") == "required":
            self.set_investigator(decided["R2"].outcome)
            risk = await self.investigate()
            if risk != "negligible" and await self.assess_risk(risk):
                await self.control_or_remediate()
        await self.release()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return ParcelOutcome.of(self.state)

    async def investigate(self) -> str:
        """BJ 17; Law 59: investigate until the city EPB and the planning bureau accept the
        report together (Law 59 ¶3). Returns R5's outcome for the accepted report."""
        while True:
            self.enter(Stage.investigation)
            report = await self.inbox.step(Step.investigation)
            decided = await self.rules(
                RulePoint.investigation_report, samples=report.last, **self._farmland(report)
            )
            self.enter(Stage.filing)
            review = await self.inbox.step(Step.filing_review)
            if not review.returned:
                break
        risk = decided["R5"].outcome
        r1 = self.state.latest("R1")
        if (
            self.amended(Amendment.law_67_registry_notice)
            and r1 is not None
            and r1.details.get("real_estate_registry")
        ):  # Law 67: the report goes with the registration records of the land
            await self.notify("real_estate_registry", documents=_documents(report))
        if risk == "negligible":
            await self.list_leave("suspected", "investigation reviewed: no exceedance", "BJ 17-18")
        return risk

    async def assess_risk(self, risk: str) -> bool:
        """Law 60-61: who is responsible, the risk assessment and its joint review, and the
        listing decision (R11). True when the parcel is listed."""
        self.enter(Stage.risk_assessment)
        await self.determine_responsible()
        while True:
            report = await self.inbox.step(Step.risk_assessment)
            review = await self.inbox.step(Step.risk_assessment_review)
            if not review.returned:
                break
        self.set_targets(report.value("targets") or [])
        decided = await self.rules(
            RulePoint.risk_assessment_accepted,
            risk_level=risk,
            acceptable=bool(report.value("acceptable")),
            recommendation=report.value("recommendation"),
        )
        listed = decided.outcome("R11") == "listed"
        await self.list_leave(
            "suspected", f"risk assessment reviewed: {decided['R11'].outcome}", "Law 61"
        )
        if listed:  # BJ 18; Law 58, 61
            self.enter(Stage.listing)
            for name in ("contaminated", "negative"):
                await self.list_enter(name, decided["R11"].explanation, decided["R11"].citation)
        return listed

    async def determine_responsible(self) -> None:
        """R4; where the polluter is unknown or disputed, the city EPB determines it and
        the planning bureau concurs (Law 48) before R4 decides again."""
        r4 = (await self.rules(RulePoint.filing_accepted))["R4"]
        while r4.outcome == "determination_required":
            determined = await self.inbox.step(Step.determination)
            concurred = await self.inbox.step(Step.determination_concurrence)
            if concurred.last.decisive != determined.last.decisive:
                continue  # the planning bureau does not concur: the city EPB determines again
            context: dict[str, Any] = {"determination": determined.value("outcome")}
            if determined.value("polluter"):
                context["determined_polluter"] = determined.value("polluter")
            r4 = (await self.rules(RulePoint.determination, **context))["R4"]
        self.bind_responsible(r4)

    async def control_or_remediate(self) -> None:
        """BJ 19: the district government chooses; control may end in development
        (remediation) or in reached targets; each ends with an effect evaluation, and the
        parcel leaves the lists by review (Law 66)."""
        path = (await self.inbox.step(Step.choose_path)).value("path")
        measures_taken = failed = False
        while True:
            if path == "risk_control":
                ended = await self.risk_control(measures_taken)
                measures_taken = True
                if ended == "development":
                    path = "remediation"
                    continue
            else:
                await self.remediate(after_failure=failed)
            if await self.evaluate() and await self.remove_from_lists():
                return
            failed = True  # BJ 30; Law 66 ¶2: targets not met, control or remediation goes on

    async def risk_control(self, measures_taken: bool) -> str:
        """BJ 19; Law 62-63: zone, signs and notice; periodic monitoring; isolation on
        diffusion. Returns `development` or `targets_reached`."""
        self.enter(Stage.risk_control)
        if not measures_taken:
            await self.inbox.step(Step.control_measures)
        while True:
            report = await self.inbox.step(Step.monitoring)
            if report.action.value == "choose_path":
                return "development"
            if report.action.value == "risk_control_completed":
                return "targets_reached"
            if report.value("diffusion_found"):
                await self.inbox.step(Step.isolation)

    async def remediate(self, after_failure: bool) -> None:
        """Law 64; BJ 28-29: the plan filed with the district EPB, then the works; after a
        failed evaluation a revised plan (and a new contractor) may be filed."""
        self.enter(Stage.remediation)
        if not after_failure:
            await self.file_plan(await self.inbox.step(Step.remediation_plan))
        while True:
            works = await self.inbox.step(
                Step.works, allows=["evaluation_failed"] if after_failure else ()
            )
            if works.action.value != "remediation_plan":
                return
            await self.file_plan(works)

    async def file_plan(self, plan: Answered) -> None:
        while True:
            self.bind_contractor(plan.value("contractor"))
            filing = await self.inbox.step(Step.plan_filing)
            if filing.value("decision") == "acknowledged":
                return
            plan = await self.inbox.step(Step.remediation_plan)

    async def evaluate(self) -> bool:
        """Law 65; BJ 30: another firm evaluates against the targets (R8), the result is
        published, and a share of evaluations is spot-checked by the city EPB."""
        self.enter(Stage.evaluation)
        commissioned = await self.inbox.step(Step.commission_evaluator)
        self.bind_evaluator(commissioned.value("party"))
        evaluation = await self.inbox.step(Step.evaluation)
        verdict = (await self.rules(RulePoint.evaluation, evaluation=evaluation.last.decisive))[
            "R8"
        ]
        await self.publish_evaluation(verdict)
        if verdict.outcome != "met":
            return False
        if await self.spot_check_drawn():
            check = await self.inbox.step(Step.spot_check)
            if check.value("result") != "met":
                return False
        return True

    async def remove_from_lists(self) -> bool:
        """Law 66: the responsible party or land user applies; the city EPB with the
        planning bureau review the evaluation; removal leaves both lists and is published.
        False when the review returns it: the targets are not shown met (Law 66 ¶2)."""
        self.enter(Stage.release)
        while True:
            await self.inbox.step(Step.removal_application)
            review = await self.inbox.step(Step.removal_review)
            if not review.returned:
                break
            if self.amended(Amendment.removal_return_reopens_works):
                return False
        for name in ("contaminated", "negative"):
            await self.list_leave(name, "targets met; removed by review (Law 66 ¶2)", "Law 66")
        if not self.journal.replaying:
            self.state.disclosure.removal_published_at = workflow.now()
        await self.notify("removal_published")
        return True

    async def release(self) -> None:
        """Law 66; BJ 15, 20: the planning bureau clears the planned use."""
        self.enter(Stage.release)
        await self.inbox.step(Step.release)
        self.enter(Stage.released)
        if not self.journal.replaying:
            self.state.status = "released"
            await self.sync()
        self.inbox.settle()

    def amended(self, amendment: Amendment) -> bool:
        """Whether this registration started under the amendment (landflow.procedure)."""
        return amendment.value in self.state.amendments

    # --- decisions ------------------------------------------------------------------

    async def rules(
        self,
        point: RulePoint,
        samples: ActionEntry | None = None,
        journaled: bool = True,
        after: Step | None = None,
        **context: Any,
    ) -> Decided:
        """Decide the rules of this moment (landflow.procedure.RULE_SEQUENCE) after the
        step the procedure was last handed, or `after` for a side action's. Side actions
        decide outside the procedure's path, so their rules are not journaled."""
        _follows(point, after or self.inbox.answered)
        if journaled and self.journal.replaying:
            ids = set(self.journal.take("rules", point.value).decisions)
            return Decided([d for d in self.state.decisions if d.id in ids])
        context |= self._rule_context(point)
        numbers = {d.rule: 0 for d in self.state.decisions}
        for d in self.state.decisions:
            numbers[d.rule] += 1
        result = await self.call(
            DECIDE,
            DecideRequest(
                parcel_id=self.state.parcel_id,
                run_id=self.state.run_id,
                point=point,
                first_number={rule: n + 1 for rule, n in numbers.items()},
                decided={d.rule: d.outcome for d in self.state.decisions},
                facts=self.state.facts,
                context=context,
                samples=samples.samples if samples else None,
            ),
            f"rules {point.value}",
        )
        briefs = [d.brief() for d in result.decisions]
        self.state.decisions.extend(briefs)
        self._disclose(result.decisions)
        if journaled:
            self.journal.record(
                JournalEntry(kind="rules", name=point.value, decisions=[b.id for b in briefs])
            )
        return Decided(briefs)

    def _rule_context(self, point: RulePoint) -> dict[str, Any]:
        """What a rule point reads from the parcel besides the facts (kept small)."""
        if point == RulePoint.evaluation:
            contractors = [
                p.id
                for p in (self.state.parties.contractor, *self.state.parties.past_contractors)
                if p
            ]
            return {
                "targets": [t.model_dump() for t in self.state.targets],
                "evaluator": self.state.parties.evaluator.id
                if self.state.parties.evaluator
                else "",
                "contractors": contractors,
            }
        return {}

    def _farmland(self, report: Answered) -> dict[str, Any]:
        facts = self.state.facts
        if facts.get("current_use") != "farmland":
            return {}
        return {k: v for k, v in report.last.decisive.items() if k in ("ph", "farmland_type")}

    async def spot_check_drawn(self) -> bool:
        """BJ 30 抽查, BJ 33 双随机: a replay-safe random draw, recorded with the share."""
        if self.journal.replaying:
            draw = self.journal.take("draw", "spot_check").value or 0.0
        else:
            draw = workflow.random().random()
            self.journal.record(JournalEntry(kind="draw", name="spot_check", value=draw))
        share = self.policy.spot_check_share if self.policy else 0.0
        drawn = draw < share
        await self.notify("spot_check_draw", drawn=drawn, draw=round(draw, 6), share=share)
        return drawn

    # --- what the procedure changes (nothing while fast-forwarding: it was carried) ----

    def enter(self, stage: Stage) -> None:
        """Close the current stage visit, naming the actor whose action moved the parcel on."""
        if self.journal.replaying:
            return
        last = self.state.stages[-1]
        if last.stage == stage:
            return
        now = workflow.now()
        mover = next((a for a in reversed(self.state.actions) if a.at >= last.entered), None)
        last.left = now
        last.by = f"{mover.role.value}:{mover.subject}" if mover else "system"
        self.state.stage = stage
        self.state.stages.append(StageVisit(stage=stage, entered=now))

    def set_investigator(self, outcome: str) -> None:
        if not self.journal.replaying:
            self.state.investigator = Role(outcome)  # R2 names a role (BJ 17)

    def set_targets(self, targets: list[dict[str, Any]]) -> None:
        if not self.journal.replaying:
            self.state.targets = [Target.model_validate(t) for t in targets]

    def bind_responsible(self, r4: DecisionBrief) -> None:
        if self.journal.replaying:
            return
        parties = self.state.parties
        parties.responsible_role = Role(r4.details["party_role"])  # every R4 row names it
        party_id, name = r4.details.get("party_id"), r4.details.get("party_name")
        parties.responsible = Party(id=party_id, name=name) if party_id and name else None

    def bind_contractor(self, contractor: dict[str, Any] | None) -> None:
        if self.journal.replaying or not contractor:
            return
        parties = self.state.parties
        new = Party.model_validate(contractor)
        if parties.contractor and parties.contractor.id != new.id:
            parties.past_contractors.append(parties.contractor)
        parties.contractor = new

    def bind_evaluator(self, party: dict[str, Any] | None) -> None:
        if not self.journal.replaying and party:
            self.state.parties.evaluator = Party.model_validate(party)

    def _disclose(self, decisions: list[Decision]) -> None:
        """The public profile's investigation conclusion (Law 58; BJ 30)."""
        for decision in decisions:
            if decision.rule == "R5":
                self.state.disclosure.investigation_conclusion = decision.explanation
                self.state.disclosure.pollutants_over_screening = [
                    e.get("item_zh") or e.get("item")
                    for e in decision.details.get("exceedances", [])
                ]

    async def publish_evaluation(self, verdict: DecisionBrief) -> None:
        if self.journal.replaying:
            return
        self.state.disclosure.evaluation_result = verdict.outcome
        self.state.disclosure.evaluation_date = workflow.now()
        await self.notify("evaluation_published", outcome=verdict.outcome, decision=verdict.id)

    async def list_enter(self, name: str, reason: str, citation: str) -> None:
        if self.journal.replaying or self.state.listed_on(name):
            return
        now = workflow.now()
        self.state.lists.append(
            ListMembership(list_name=name, entered_at=now, reason=reason, citation=citation)
        )
        await self._list_change(name, "enter", reason, citation)

    async def list_leave(self, name: str, reason: str, citation: str) -> None:
        if self.journal.replaying or not self.state.listed_on(name):
            return
        membership = next(m for m in self.state.lists if m.list_name == name and m.left_at is None)
        membership.left_at, membership.left_reason = workflow.now(), reason
        await self._list_change(name, "leave", reason, citation)

    async def _list_change(self, name: str, change: str, reason: str, citation: str) -> None:
        await self.call(
            CHANGE_LIST,
            ListChange(
                parcel_id=self.state.parcel_id,
                run_id=self.state.run_id,
                list_name=name,
                change=change,
                at=workflow.now(),
                reason=reason,
                citation=citation,
                name=self.state.facts.get("name", ""),
                district=self.state.district,
            ),
            f"lists: {change} {name}",
        )

    # --- side effects ---------------------------------------------------------------

    async def call(self, ref: ActivityRef[In, Out], arg: In, summary: str) -> Out:
        return await workflow.execute_activity(
            ref.name,
            arg,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            result_type=ref.output,
            summary=summary,
        )

    async def sync(self) -> None:
        """Search attributes (only what changed), UI details and the registry rows."""
        if self.journal.replaying:
            return
        updates, self._searchable = visibility.search_attribute_updates(
            self.state, self._searchable
        )
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(visibility.current_details(self.state))
        self.state.revision += 1
        await self.call(PROJECT, self._projection(), f"registry: {self.state.stage.value}")

    def _projection(self) -> ParcelProjection:
        state, facts = self.state, self.state.facts
        blocking = state.blocking()
        return ParcelProjection(
            parcel_id=state.parcel_id,
            run_id=state.run_id,
            workflow_id=workflow.info().workflow_id,
            procedure=state.procedure,
            revision=state.revision,
            name=facts.get("name", ""),
            district=state.district,
            planned_use=facts.get("planned_use", ""),
            area_m2=float(facts.get("area_m2", 0)),
            location=facts.get("location"),
            stage=state.stage,
            status=state.status,
            listed=state.listed,
            overdue=bool(blocking and blocking.overdue),
            deadline=blocking.deadline if blocking else None,
            waiting_on=state.waiting_on(),
            tasks=[
                TaskRow(
                    visit=t.visit,
                    step=t.step,
                    stage=t.stage,
                    role=a.role,
                    district=a.district,
                    party=a.party,
                    deadline=t.deadline,
                    overdue=t.overdue,
                    blocking=t.blocking and a.owes,
                    reminded=t.reminded,
                )
                for t in state.tasks
                for a in t.assignees
                if not a.answered
            ],
            parties=state.parties,
            disclosure=state.disclosure,
            started_at=state.stages[0].entered,
            updated_at=workflow.now(),
        )

    async def notify(self, kind: NoticeKind, task: Task | None = None, **details: Any) -> None:
        if self.journal.replaying:
            return
        visit = task.visit if task else self.state.seq
        rule = self.policy.steps[task.step] if task and self.policy else None
        await self.call(
            NOTIFY,
            Notice(
                key=f"{self.state.run_id}/{visit}/{task.step.value if task else 'parcel'}/{kind}",
                parcel_id=self.state.parcel_id,
                run_id=self.state.run_id,
                kind=kind,
                district=self.state.district,
                at=workflow.now(),
                step=task.step if task else None,
                role=task.assignees[0].role if task else None,
                deadline=task.deadline if task else None,
                escalate_to=rule.escalate_to if rule and kind == "escalation" else None,
                details=details,
            ),
            f"{kind}{': ' + task.step.value if task else ''}",
        )

    async def notify_deadline(self, kind: str, task: Task) -> None:
        await self.notify(kind, task)  # type: ignore[arg-type]

    async def side_action(self, claim: Claim, entry: ActionEntry, request: ActionRequest) -> None:
        """An action recorded while its step stays open (BJ 29: soil transport, inspection)."""
        if entry.action.value != "soil_transport":
            return
        await self.rules(
            RulePoint.soil_transport, journaled=False, after=entry.step, transport=entry.decisive
        )
        origin, destination = (
            entry.decisive["origin_district"],
            entry.decisive["destination_district"],
        )
        self.inbox.open_side(
            Step.transport_acknowledgement, transport_assignees(origin, destination), entry.seq
        )

    async def continue_as_new(self) -> None:
        """Carry the lean state (and the policy) into a new run, which fast-forwards."""
        size_now = workflow.info().get_current_history_size()
        self.state.runs += 1
        carried = ParcelStart(facts=self.state.facts, carried=self.state, policy=self.policy)
        # The size at the last workflow task leaves out the ContinuedAsNew event itself,
        # which carries this input (the state and the policy): the budget counts it too.
        event = workflow.payload_converter().to_payloads([carried])[0].ByteSize() + 512
        self.state.history_bytes_before += size_now + event
        self.state.carry_bytes = event
        workflow.continue_as_new(carried)

    async def _begin(self, start: ParcelStart) -> None:
        if self.policy is None:
            self.policy = await self.call(
                LOAD_POLICY, PolicyRequest(parcel_id=self.state.parcel_id), "load the policy"
            )
        if start.carried is None:
            self.state.parties.land_user = _right_holder(self.state.facts)
        if self._inbox is None:
            self._inbox = Inbox(self.state, self.policy, self.journal, self)
        self.inbox.watch_side_tasks()
        if start.carried is None:
            await self.sync()

    # --- the action update ------------------------------------------------------------

    def _request(self, name: str, args: Sequence[RawValue], verify: bool) -> ActionRequest:
        if len(args) != 1:
            raise reject(Refusal.invalid_body, "an action takes exactly one argument")
        request = workflow.payload_converter().from_payload(args[0].payload, ActionRequest)
        if verify:
            try:
                signing.verify(
                    signing.installed(), workflow.info().workflow_id, name, request, workflow.now()
                )
            except signing.BadSignature as exc:
                raise reject(Refusal.bad_signature, str(exc)) from None
        return request

    @workflow.update(dynamic=True)
    async def act(self, name: str, args: Sequence[RawValue]) -> ActionOutcome:
        return await self.inbox.act(name, self._request(name, args, verify=False))

    @act.validator
    def validate_act(self, name: str, args: Sequence[RawValue]) -> None:
        if self._inbox is None:
            raise reject(Refusal.wrong_stage, "the parcel is starting: no action is open yet")
        self.inbox.check(name, self._request(name, args, verify=True))

    @workflow.update(name=STARTED_UPDATE)
    async def started(self) -> StartedView:
        """Answers once the new parcel waits on its first step and the registry shows it
        (POST /parcels: the inbox lists the step as soon as the client is told)."""
        # earlier runs answered before; the amendment spares new ones the patch marker
        projected = self.amended(Amendment.unmarked_start) or workflow.patched(
            STARTED_AFTER_PROJECTION
        )
        await workflow.wait_condition(
            lambda: (
                self.state.status != "running"
                or (
                    self.state.blocking() is not None
                    and (not projected or (self._inbox is not None and self._inbox.projected > 0))
                )
            )
        )
        blocking = self.state.blocking()
        return StartedView(
            stage=self.state.stage,
            waiting_on=self.state.waiting_on(),
            deadline=blocking.deadline if blocking else None,
            run_id=self.state.run_id,
            next_actions=next_actions(self.state),
        )

    @workflow.query(name=STATE_QUERY)
    def current_state(self) -> ParcelState:
        return self.state


def _follows(point: RulePoint, step: Step | None) -> None:
    """The procedure table says which rules follow which step (`StepSpec.rules_after`);
    deciding them anywhere else is a bug in this file, not a state of the parcel."""
    expected = PROCEDURE[step].rules_after if step else RulePoint.intake
    if point != expected:
        raise RuntimeError(f"rules {point} after {step}: landflow/procedure.py says {expected}")


def _right_holder(facts: dict[str, Any]) -> Party | None:
    """The land user bound at intake: the one registered, or after a transfer the
    transferee, who now holds the land-use right."""
    holder = facts.get("land_user")
    if holder is None and facts.get("right_status") == "transferred":
        transferee = facts.get("transferee") or {}
        holder = {"id": transferee.get("id"), "name": transferee.get("name")}
    return Party.model_validate(holder) if holder and holder.get("id") else None


def _documents(answer: Answered) -> list[str]:
    return [d.document_id for d in answer.last.documents]
