"""flowlane processes as BPMN 2.0 XML and back (the designer's format; ADR 0010).

THE CONTRACT (the designer's JavaScript and its moddle descriptor rely on it):

* Namespace ``flowlane`` = :data:`FLOWLANE_NS`. One ``bpmn:process`` (id = the process key,
  ``name`` = its name) with ``flowlane:settings`` = JSON of every top-level key of the process
  file except ``key``, ``name`` and ``blocks`` (object, task, launch, variables, ...).
* One flow node per block: element id = the block id (``flowlane:block`` holds the real id
  when it is not a valid XML id), ``name`` = the block's ``name`` (else its title / type),
  ``flowlane:type`` = the block type, ``flowlane:params`` = JSON of the block's parameters
  without its exits and without ``type`` / ``name``; option / exit / branch *names* stay in
  the params with their targets left out (``options: {"yes": null}``, ``exits: {"ok": null}``,
  ``branches: [{"if": "..."}]``), so an exit nobody drew is an empty exit.
  Element kinds: start → startEvent; end → endEvent + terminateEventDefinition; fork / join →
  parallelGateway; condition → exclusiveGateway; wait_for → intermediateCatchEvent +
  conditionalEventDefinition; delay → intermediateCatchEvent + timerEventDefinition;
  question / call / task → userTask; operation → serviceTask; counter → scriptTask;
  message → sendTask; subprocess → callActivity (calledElement = process key); for_each →
  callActivity + multiInstanceLoopCharacteristics.
* One ``bpmn:sequenceFlow`` per filled exit, ``flowlane:exit`` = the exit's label as
  :func:`flowlane.model.process.exits_of` names it (``next``, ``next[0]`` … for a fork,
  ``branches[0]``, ``else``, ``on_timeout``, ``options.<name>``, ``exits.<result>``); ``name``
  = a readable label (the option / result name, "else", "timeout"); a condition branch also
  carries its expression as ``conditionExpression``. A drawn flow without ``flowlane:exit``
  is the source's only ``next`` (an error where the block has several exits).
* ``bpmndi`` shapes and edges for everything (auto layout when the input has none).
"""

from __future__ import annotations

FLOWLANE_NS = "https://flowlane.dev/schema/bpmn/1.0"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
