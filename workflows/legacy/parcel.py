"""The first procedure (the 2016 plan's outline), frozen: `ParcelWorkflow`.

Parcels started before the law's chain (workflows/parcel.py, `ParcelWorkflowV2`) finish
here, on the steps they started with, and the golden histories in
tests/histories/legacy keep replaying against this file. Only changes that write no
command may be made here (validators, queries, update answers): the validator now
verifies the signed actor, `act` answers a small `ActionOutcome`, and the `state` query
shows the parcel in the shape of the new procedure. Do not change `run` or what it calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    import workflows.legacy.names as names  # this form: see workflows/parcel.py
    from landflow import signing
    from landflow import state as current_shape
    from landflow.messages import (
        LEGACY_PARCEL_WORKFLOW,
        LEGACY_STATE_QUERY,
        STATE_QUERY,
        ActionOutcome,
    )
    from landflow.messages import ActionRequest as SignedRequest
    from workflows.legacy.contracts import (
        Action,
        ActionRecord,
        ActionRequest,
        DeadlineNotice,
        DecideInput,
        Decision,
        ListChange,
        NextAction,
        ParcelFacts,
        ParcelState,
        Policy,
        RegistryUpdate,
        Role,
        Stage,
        StageVisit,
        Step,
    )
    from workflows.legacy.gate import STEP_ACTIONS, check_action, reject
    from workflows.legacy.visibility import current_details, search_attribute_updates

ACTIVITY_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=LEGACY_PARCEL_WORKFLOW)
class ParcelWorkflow:
    @workflow.init
    def __init__(self, facts: ParcelFacts) -> None:
        now = workflow.now()
        self.facts = facts
        self.state = ParcelState(
            parcel_id=facts.parcel_id,
            facts=facts.submitted(),
            district=facts.district,
            stage=Stage.intake,
            history=[StageVisit(stage=Stage.intake, entered=now)],
        )
        self.policy: Policy | None = None
        self._inbox: ActionRecord | None = None
        self._busy = True  # between steps: no action is open
        self._waiting = False  # a step is open and the registry shows it
        self._done = False
        self._accepted = 0  # tickets handed to accepted actions
        self._consumed = 0  # ticket of the action the procedure took last
        self._settled = 0  # tickets up to this one have been fully handled
        self._visits = 0  # waiting steps entered so far (keys reminders uniquely)
        self._notices: set[str] = set()
        self._deadline = workflow.now()  # of the current step; kept across soil transports
        self._overdue = False

    # --- the procedure -------------------------------------------------------------

    @workflow.run
    async def run(self, facts: ParcelFacts) -> ParcelState:
        self.policy = await workflow.execute_activity(
            names.LOAD_POLICY,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            result_type=Policy,
            summary="load the deadline policy",
        )
        await self._sync()
        screening = await self._decide("R3")  # BJ 16
        await self._decide("R6")  # BJ 9: demolition filing, recorded for the district
        suspected = False
        if screening.outcome == "required":
            self._enter(Stage.closure_screening)
            result = await self._await_action(Step.closure_screening, Role.district_epb)
            suspected = result.payload["result"] == "suspected"
        needs_investigation = await self._decide("R1", suspected_file=suspected)
        if needs_investigation.outcome == "required":
            investigator = await self._decide("R2")
            self.state.investigator = Role(investigator.outcome)
            if await self._investigate_and_file():
                await self._list()
                await self._control_or_remediate()
        await self._release()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    async def _investigate_and_file(self) -> bool:
        """Investigate until both bureaus accept the filing; True when the parcel is listed."""
        while True:
            self._enter(Stage.investigation)
            report = await self._await_action(Step.investigation, self.state.investigator)
            risk = await self._decide("R5", samples=report.payload["samples"])  # GB 36600
            await self._decide("R9", samples=report.payload["samples"])
            self._enter(Stage.filing)
            if await self._filing_accepted():
                break
        # Law 60-61: over intervention values, or over screening values with a risk
        # assessment that finds the risk unacceptable, the parcel is listed.
        if risk.outcome == "control_or_remediation":
            return True
        return risk.outcome == "assessment_required" and not report.payload.get("risk_acceptable")

    async def _filing_accepted(self) -> bool:
        """BJ 17; Law 59: the city EPB, then the planning and land bureau, accept or return."""
        for step, role in (
            (Step.filing_city_epb, Role.city_epb),
            (Step.filing_planning_land, Role.planning_land),
        ):
            review = await self._await_action(step, role)
            if review.payload["decision"] == "returned":
                return False
        return True

    async def _list(self) -> None:
        """BJ 18; Law 58, 61: the contaminated-parcel list and the negative list."""
        self._enter(Stage.listing)
        self.state.listed = True
        await self._change_lists("enter", "risk not acceptable for the planned use (Law 61)")

    async def _control_or_remediate(self) -> None:
        choice = await self._await_action(Step.choose_path, Role.district_government)
        if choice.payload["path"] == "risk_control":
            await self._risk_control()
        await self._remediate()

    async def _risk_control(self) -> None:
        """BJ 19; Law 62-63: control zone, then periodic monitoring until development."""
        self._enter(Stage.risk_control)
        step = Step.control_measures
        while True:
            taken = await self._await_action(step, Role.district_government)
            if taken.action == Action.choose_path:
                return  # development decided: remediation follows
            step = Step.monitoring
            if taken.action == Action.monitoring_result and taken.payload["diffusion_found"]:
                await self._await_action(Step.isolation, Role.land_user)  # BJ 19

    async def _remediate(self) -> None:
        responsible = await self._decide("R4")  # BJ 28; Law 45-48, 68
        self.state.remediator = (
            Role.district_government
            if responsible.outcome == "district_government"
            else Role.responsible_party
        )
        self.state.remediation_party = responsible.details.get("party_name")
        self._enter(Stage.remediation)
        plan = await self._await_action(Step.remediation_plan, self.state.remediator)
        self.state.contractor = plan.payload["contractor"]
        while True:
            works = await self._await_action(Step.works, self.state.remediator)
            while works.action == Action.soil_transport:
                await self._decide("R7", transport=works.payload)  # BJ 29; Law 41
                works = await self._await_action(
                    Step.works, self.state.remediator, keep_deadline=True
                )
            self._enter(Stage.evaluation)
            evaluation = await self._await_action(Step.evaluation, Role.third_party_evaluator)
            verdict = await self._decide(
                "R8", evaluation=evaluation.payload, contractor=self.state.contractor
            )
            if verdict.outcome == "met":
                return
            self._enter(Stage.remediation)  # BJ 30: targets not met

    async def _release(self) -> None:
        """Law 66: off the lists, the planned use cleared."""
        self._enter(Stage.release)
        await self._await_action(Step.release, Role.planning_land)
        if self.state.listed:
            self.state.listed = False
            await self._change_lists("leave", "released for the planned use (Law 66)")
        self._enter(Stage.released)
        self._leave_step()
        await self._sync()
        self._done = True
        self._settled = self._consumed

    # --- waiting for people, with durable deadlines -------------------------------

    async def _await_action(
        self, step: Step, role: Role | None, keep_deadline: bool = False
    ) -> ActionRecord:
        if self.policy is None or role is None:
            raise RuntimeError(f"step {step} entered without a policy or a role")  # a bug: retry
        rule = self.policy.steps[step]
        if not keep_deadline:
            self._visits += 1
            self._deadline = workflow.now() + timedelta(days=rule.days)
            self._overdue = False
        deadline = self._deadline
        self.state.deadline, self.state.overdue = deadline, self._overdue
        self.state.step, self.state.waiting_on = step, role
        self.state.next_actions = [
            NextAction(action=a, role=role) for a in sorted(STEP_ACTIONS[step][1])
        ]
        self._busy = False
        await self._sync()
        self._waiting = True
        self._settled = self._consumed  # the previous action's update may now answer
        remind_at = deadline - timedelta(days=rule.remind_days_before)
        if not self._overdue and not await self._wait_until(remind_at, f"remind {step}"):
            await self._notify("reminder", step, role, deadline)
        if not self._overdue and not await self._wait_until(deadline, f"deadline {step}"):
            self._overdue = self.state.overdue = True
            await self._sync()
            await self._notify("escalation", step, role, deadline, rule.escalate_to)
        await workflow.wait_condition(self._has_action)
        taken, self._inbox = self._inbox, None
        if taken is None:
            raise RuntimeError("woke without an action")  # a bug: fail the task, retry
        self._consumed = self._accepted
        self.state.actions.append(taken)
        self._leave_step()
        return taken

    def _has_action(self) -> bool:
        return self._inbox is not None

    async def _wait_until(self, moment: datetime, summary: str) -> bool:
        """Wait for an action until `moment`; True if one came first."""
        remaining = (moment - workflow.now()).total_seconds()
        if remaining <= 0:
            return self._has_action()
        try:
            await workflow.wait_condition(
                self._has_action, timeout=remaining, timeout_summary=summary
            )
        except TimeoutError:
            return False
        return True

    def _leave_step(self) -> None:
        """Leave the current step: nothing open, nothing overdue."""
        self._busy, self._waiting = True, False
        self.state.step = self.state.waiting_on = None
        self.state.deadline = None
        self.state.overdue = False
        self.state.next_actions = []

    def _enter(self, stage: Stage) -> None:
        """Close the current stage visit, naming the actor whose action moved the parcel on."""
        now = workflow.now()
        last = self.state.history[-1]
        if last.stage == stage:
            return
        actions = self.state.actions
        mover = actions[-1] if actions and actions[-1].at >= last.entered else None
        last.left = now
        last.by = f"{mover.role.value}:{mover.subject}" if mover else "system"
        self.state.stage = stage
        self.state.history.append(StageVisit(stage=stage, entered=now))

    # --- the action update ---------------------------------------------------------

    def _request(self, args: Sequence[RawValue]) -> ActionRequest:
        if len(args) != 1:
            raise reject("InvalidBody", "an action takes exactly one argument")
        return workflow.payload_converter().from_payload(args[0].payload, ActionRequest)

    @workflow.update(dynamic=True)
    async def act(self, name: str, args: Sequence[RawValue]) -> ActionOutcome:
        request = self._request(args)
        body = check_action(
            self.state, self._busy, request.actor, name, request.payload, request.body_error
        )
        record = ActionRecord(
            action=Action(name),
            role=request.actor.role,
            subject=request.actor.subject,
            at=workflow.now(),
            payload=body.model_dump(mode="json"),
        )
        self._inbox, self._busy = record, True
        self._accepted += 1
        ticket = self._accepted
        await workflow.wait_condition(lambda: self._settled >= ticket)
        return ActionOutcome(
            parcel_id=self.state.parcel_id,
            action=name,
            seq=len(self.state.actions),
            visit=self._visits,
            stage=self.state.stage,
            step=None,
            waiting_on=[self.state.waiting_on] if self.state.waiting_on else [],
            deadline=self.state.deadline,
            status="released" if self._done else "running",
        )

    @act.validator
    def validate_act(self, name: str, args: Sequence[RawValue]) -> None:
        request = self._request(args)
        signed = SignedRequest(
            actor=request.actor.model_dump(),
            body=request.payload,
            body_error=request.body_error,
            visit=request.visit,
            key=request.key,
            size=request.size,
            issued_at=request.issued_at or workflow.now(),
            signature=request.signature,
        )
        try:
            signing.verify(
                signing.installed(), workflow.info().workflow_id, name, signed, workflow.now()
            )
        except signing.BadSignature as exc:
            raise reject("BadSignature", str(exc)) from None
        check_action(
            self.state, self._busy, request.actor, name, request.payload, request.body_error
        )

    @workflow.update
    async def started(self) -> ParcelState:
        """Returns once the new parcel waits on its first step (used by POST /parcels)."""
        await workflow.wait_condition(lambda: self._waiting or self._done)
        return self.state

    @workflow.query(name=LEGACY_STATE_QUERY)
    def current(self) -> ParcelState:
        return self.state

    @workflow.query(name=STATE_QUERY)
    def current_state(self) -> current_shape.ParcelState:
        """The parcel in the shape of the current procedure, for the API and the registry."""
        return names.as_current_state(
            self.state, self._visits, self._busy, workflow.info().first_execution_run_id
        )

    # --- activities ----------------------------------------------------------------

    async def _decide(self, rule: str, **context: Any) -> Decision:
        number = sum(1 for d in self.state.decisions if d.rule == rule) + 1
        decision = await workflow.execute_activity(
            names.DECIDE,
            DecideInput(
                parcel_id=self.state.parcel_id,
                decision_id=f"{self.state.parcel_id}/{rule}/{number}",
                rule=rule,
                facts=self.state.facts,
                context=context,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            result_type=Decision,
            summary=f"rule {rule}",
        )
        self.state.decisions.append(decision)
        return decision

    async def _sync(self) -> None:
        """Search attributes, UI details and the registry row follow every change."""
        workflow.upsert_search_attributes(search_attribute_updates(self.state))
        workflow.set_current_details(current_details(self.state))
        await workflow.execute_activity(
            names.SYNC_REGISTRY,
            RegistryUpdate(
                parcel_id=self.state.parcel_id,
                workflow_id=workflow.info().workflow_id,
                name=self.facts.name,
                district=self.facts.district,
                planned_use=self.facts.planned_use,
                stage=self.state.stage,
                waiting_on=self.state.waiting_on,
                deadline=self.state.deadline,
                overdue=self.state.overdue,
                listed=self.state.listed,
                updated_at=workflow.now(),
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            summary=f"registry: {self.state.stage.value}",
        )

    async def _change_lists(self, change: str, reason: str) -> None:
        await workflow.execute_activity(
            names.CHANGE_LISTS,
            ListChange(
                parcel_id=self.state.parcel_id, change=change, at=workflow.now(), reason=reason
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            summary=f"lists: {change}",
        )

    async def _notify(
        self, kind: str, step: Step, role: Role, deadline: datetime, escalate_to: Role | None = None
    ) -> None:
        key = f"{self.state.parcel_id}/{self._visits}/{step.value}/{kind}"
        if key in self._notices:
            return  # a kept deadline (soil transport during works) is not reminded twice
        self._notices.add(key)
        await workflow.execute_activity(
            names.NOTIFY_DEADLINE,
            DeadlineNotice(
                key=key,
                parcel_id=self.state.parcel_id,
                kind=kind,
                step=step,
                role=role,
                district=self.state.district,
                deadline=deadline,
                escalate_to=escalate_to,
                at=workflow.now(),
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            summary=f"{kind}: {step.value}",
        )
