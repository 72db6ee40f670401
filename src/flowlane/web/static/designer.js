// The process designer: a bpmn-js modeler with flowlane's palette, a properties panel, validation,
// normalize, save as a new version, YAML, download and a test run drawn on the diagram.
// The diagram follows the contract of flowlane.model.bpmn: each block is a flow node with
// flowlane:type and flowlane:params (JSON, exits left out), each drawn exit a sequence flow with
// flowlane:exit, the process settings in flowlane:settings on bpmn:process.
// Every text comes translated from the page (#designer-texts); nothing here is shown in English.
(function () {
  "use strict";

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  var cfg = readJson("designer-config");
  var schema = readJson("designer-schema");
  var TEXTS = readJson("designer-texts") || {};
  var moddleDescriptor = readJson("designer-moddle");
  if (!cfg || !window.BpmnJS) { return; }
  var fl = window.flowlane;

  function t(key, vars) {
    var text = TEXTS[key] || key;
    Object.keys(vars || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(vars[name]));
    });
    return text;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === undefined || value === null || value === false) { return; }
      if (name === "text") { node.textContent = value; }
      else if (name === "className") { node.className = value; }
      else if (name.slice(0, 2) === "on") { node.addEventListener(name.slice(2), value); }
      else if (value === true) { node.setAttribute(name, ""); }
      else { node.setAttribute(name, value); }
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  // ---- block kinds (the contract's element kinds) ---------------------------------------------

  var KINDS = {
    start: { bpmn: "bpmn:StartEvent", icon: "bpmn-icon-start-event-none", group: "event" },
    wait_for: { bpmn: "bpmn:IntermediateCatchEvent", def: "bpmn:ConditionalEventDefinition",
      icon: "bpmn-icon-intermediate-event-catch-condition", group: "event" },
    delay: { bpmn: "bpmn:IntermediateCatchEvent", def: "bpmn:TimerEventDefinition",
      icon: "bpmn-icon-intermediate-event-catch-timer", group: "event" },
    question: { bpmn: "bpmn:UserTask", icon: "bpmn-icon-user-task", group: "activity" },
    call: { bpmn: "bpmn:UserTask", icon: "bpmn-icon-user", group: "activity" },
    task: { bpmn: "bpmn:UserTask", icon: "bpmn-icon-manual-task", group: "activity" },
    operation: { bpmn: "bpmn:ServiceTask", icon: "bpmn-icon-service-task", group: "activity" },
    counter: { bpmn: "bpmn:ScriptTask", icon: "bpmn-icon-script-task", group: "activity" },
    message: { bpmn: "bpmn:SendTask", icon: "bpmn-icon-send-task", group: "activity" },
    subprocess: { bpmn: "bpmn:CallActivity", icon: "bpmn-icon-call-activity", group: "activity" },
    for_each: { bpmn: "bpmn:CallActivity", icon: "bpmn-icon-parallel-mi-marker", group: "activity",
      loop: true },
    fork: { bpmn: "bpmn:ParallelGateway", icon: "bpmn-icon-gateway-parallel", group: "gateway" },
    join: { bpmn: "bpmn:ParallelGateway", icon: "bpmn-icon-gateway-complex", group: "gateway" },
    condition: { bpmn: "bpmn:ExclusiveGateway", icon: "bpmn-icon-gateway-xor", group: "gateway" },
    end: { bpmn: "bpmn:EndEvent", def: "bpmn:TerminateEventDefinition",
      icon: "bpmn-icon-end-event-terminate", group: "end" }
  };

  // Default parameters of a new block (only what makes it valid or useful at once).
  function defaultParams(type, variant) {
    switch (type) {
      case "question": return { title: "", options: { yes: null, no: null } };
      case "call": return { title: "", options: { reached: null, not_reached: null } };
      case "task": return { title: "", wait: true };
      case "wait_for": return { until: "" };
      case "delay": return { "for": "1h" };
      case "operation": return { set: {} };
      case "counter": return { counter: "", add: 1 };
      case "message": return { to: "client", subject: "", body: "" };
      case "subprocess": return { process: "" };
      case "for_each": return { query: { type: "" }, process: "" };
      case "condition": return { branches: [{ "if": "" }] };
      case "end": return { outcome: variant || "neutral" };
      default: return {};
    }
  }

  // ---- the JSON Schema of the process file: parameters per block type ----------------------------

  var DEFS = (schema && (schema.$defs || schema.definitions)) || {};
  var EXIT_PARAMS = { next: true, "else": true, on_timeout: true };
  var NAMED_EXITS = { options: "options", exits: "exits" };

  function resolve(node) {
    var seen = 0;
    while (node && node.$ref && seen < 20) {
      node = DEFS[node.$ref.split("/").pop()] || {};
      seen += 1;
    }
    return node || {};
  }

  function blockDef(type) {
    var names = Object.keys(DEFS);
    for (var i = 0; i < names.length; i += 1) {
      var props = DEFS[names[i]].properties || {};
      var typ = props.type;
      if (typ && (typ["const"] === type || (typ["enum"] && typ["enum"].length === 1 && typ["enum"][0] === type))) {
        return DEFS[names[i]];
      }
    }
    return null;
  }

  // What input a parameter gets: text | number | scalar | mixed | enum | bool | json.
  function paramKind(prop) {
    prop = resolve(prop);
    var variants = prop.anyOf ? prop.anyOf.map(resolve) : [prop];
    var nullable = variants.some(function (v) { return v.type === "null"; });
    variants = variants.filter(function (v) { return v.type !== "null"; });
    var kinds = variants.map(function (v) {
      if (v["enum"]) { return "enum"; }
      if (v.type === "boolean") { return "bool"; }
      if (v.type === "integer" || v.type === "number") { return "number"; }
      if (v.type === "string") { return "text"; }
      return "json";
    });
    var out = { nullable: nullable, values: null, kind: "json" };
    if (kinds.length === 1) {
      out.kind = kinds[0];
      if (out.kind === "enum") { out.values = variants[0]["enum"]; }
    } else if (kinds.every(function (k) { return k === "text" || k === "number"; })) {
      out.kind = "scalar";
    } else if (kinds.indexOf("text") >= 0) {
      out.kind = "mixed";
    }
    return out;
  }

  // ---- exits ----------------------------------------------------------------------------------

  function bo(element) { return element.businessObject; }
  function blockType(element) { return bo(element).get("flowlane:type") || ""; }
  function isBlock(element) { return !!element && !element.waypoints && !!blockType(element); }

  function paramsOf(element) {
    var raw = bo(element).get("flowlane:params");
    if (!raw) { return {}; }
    try {
      var parsed = JSON.parse(raw);
      return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
    } catch (e) {
      return {};
    }
  }

  function outgoing(element) {
    return (element.outgoing || []).filter(function (c) { return c.type === "bpmn:SequenceFlow"; });
  }

  // Every exit label of a block, as flowlane.model.process.exits_of names them.
  function exitLabels(element) {
    var type = blockType(element);
    var params = paramsOf(element);
    var out = [];
    if (type === "end") { return out; }
    if (type === "fork") {
      var n = Math.max(outgoing(element).length + 1, 2);
      for (var i = 0; i < n; i += 1) { out.push("next[" + i + "]"); }
      return out;
    }
    if (type === "condition") {
      (params.branches || []).forEach(function (_b, j) { out.push("branches[" + j + "]"); });
      out.push("else");
      return out;
    }
    if (type === "wait_for") {
      out.push("next");
      if (params.timeout) { out.push("on_timeout"); }
      return out;
    }
    if (type === "question" || type === "call") {
      return Object.keys(params.options || {}).map(function (k) { return "options." + k; });
    }
    if (type === "subprocess" && params.exits && Object.keys(params.exits).length) {
      return Object.keys(params.exits).map(function (k) { return "exits." + k; });
    }
    return ["next"];
  }

  function exitOf(connection) { return bo(connection).get("flowlane:exit") || ""; }

  function usedExits(element) {
    return outgoing(element).map(function (c) { return exitOf(c) || "next"; });
  }

  function emptyExits(element) {
    var used = usedExits(element);
    if (blockType(element) === "fork") { return used.length ? [] : ["next[0]"]; }
    return exitLabels(element).filter(function (label) { return used.indexOf(label) < 0; });
  }

  // The readable label of an exit (the flow's name).
  function exitName(element, label) {
    if (!label || label === "next" || /^next\[\d+\]$/.test(label)) { return ""; }
    if (label.indexOf("options.") === 0) { return label.slice(8); }
    if (label.indexOf("exits.") === 0) { return label.slice(6); }
    if (label === "on_timeout") { return "timeout"; }
    var m = /^branches\[(\d+)\]$/.exec(label);
    if (m && element) {
      var branch = (paramsOf(element).branches || [])[Number(m[1])];
      var expr = branch && branch["if"] ? String(branch["if"]) : label;
      return expr.length > 40 ? expr.slice(0, 39) + "…" : expr;
    }
    return label;
  }

  // ---- bpmn-js modules --------------------------------------------------------------------------

  function freeId(registry, type) {
    var base = type;
    var n = 1;
    while (registry.get(base + "_" + n)) { n += 1; }
    return base + "_" + n;
  }

  function FlowlanePalette(palette, create, elementFactory, bpmnFactory, elementRegistry) {
    this._create = create;
    this._elementFactory = elementFactory;
    this._bpmnFactory = bpmnFactory;
    this._registry = elementRegistry;
    palette.registerProvider(500, this);
  }
  FlowlanePalette.$inject = ["palette", "create", "elementFactory", "bpmnFactory", "elementRegistry"];

  FlowlanePalette.prototype.createShape = function (type, variant) {
    var kind = KINDS[type];
    var params = defaultParams(type, variant);
    var attrs = { id: freeId(this._registry, type), "flowlane:type": type };
    attrs.name = variant ? t("end." + variant) : t("type." + type);
    if (type === "start") { attrs.name = t("type.start"); }
    if (Object.keys(params).length) { attrs["flowlane:params"] = JSON.stringify(params); }
    var businessObject = this._bpmnFactory.create(kind.bpmn, attrs);
    if (kind.loop) {
      businessObject.loopCharacteristics = this._bpmnFactory.create("bpmn:MultiInstanceLoopCharacteristics");
    }
    var options = { type: kind.bpmn, businessObject: businessObject };
    if (kind.def) { options.eventDefinitionType = kind.def; }
    return this._elementFactory.createShape(options);
  };

  FlowlanePalette.prototype.getPaletteEntries = function () {
    var self = this;
    function entry(type, variant, icon) {
      var start = function (event) { self._create.start(event, self.createShape(type, variant)); };
      return {
        group: KINDS[type].group,
        className: icon || KINDS[type].icon,
        title: variant ? t("end." + variant) : t("type." + type),
        action: { dragstart: start, click: start }
      };
    }
    return function (entries) {
      var out = {};
      var tools = { "hand-tool": "tool.hand", "lasso-tool": "tool.lasso", "space-tool": "tool.space",
        "global-connect-tool": "tool.connect", "tool-separator": null };
      Object.keys(tools).forEach(function (name) {
        if (entries[name]) {
          out[name] = entries[name];
          if (tools[name]) { out[name].title = t(tools[name]); }
        }
      });
      (cfg.blockTypes || Object.keys(KINDS)).forEach(function (type) {
        if (!KINDS[type]) { return; }
        if (type === "end") {
          ["positive", "neutral", "negative"].forEach(function (outcome) {
            out["create.fl-end-" + outcome] = entry("end", outcome,
              KINDS.end.icon + " fl-outcome-" + outcome);
          });
        } else {
          out["create.fl-" + type] = entry(type);
        }
      });
      return out;
    };
  };

  // The context pad offers connect and delete only (no generic BPMN append / replace).
  function FlowlaneContextPad(contextPad) { contextPad.registerProvider(500, this); }
  FlowlaneContextPad.$inject = ["contextPad"];
  FlowlaneContextPad.prototype.getContextPadEntries = function () {
    return function (entries) {
      var out = {};
      ["connect", "delete"].forEach(function (name) { if (entries[name]) { out[name] = entries[name]; } });
      return out;
    };
  };

  // One undoable step: the block's properties and the flows that follow its exits.
  function UpdateBlockHandler(modeling) { this._modeling = modeling; }
  UpdateBlockHandler.$inject = ["modeling"];
  UpdateBlockHandler.prototype.preExecute = function (ctx) {
    var modeling = this._modeling;
    if (ctx.properties) { modeling.updateProperties(ctx.element, ctx.properties); }
    (ctx.flows || []).forEach(function (f) { modeling.updateProperties(f.connection, f.properties); });
  };
  UpdateBlockHandler.prototype.execute = function () { return []; };
  UpdateBlockHandler.prototype.revert = function () { return []; };

  // A new flow takes the first exit of its source that no flow uses yet.
  function FlowlaneBehavior(eventBus, commandStack, modeling) {
    commandStack.registerHandler("flowlane.updateBlock", UpdateBlockHandler);
    eventBus.on("commandStack.connection.create.postExecuted", function (event) {
      var connection = event.context.connection;
      if (!connection || connection.type !== "bpmn:SequenceFlow" || exitOf(connection)) { return; }
      var source = connection.source;
      if (!isBlock(source)) { return; }
      var used = outgoing(source).filter(function (c) { return c !== connection; })
        .map(function (c) { return exitOf(c) || "next"; });
      var free = exitLabels(source).filter(function (l) { return used.indexOf(l) < 0; });
      if (!free.length) { return; }
      var props = { "flowlane:exit": free[0] };
      var name = exitName(source, free[0]);
      if (name) { props.name = name; }
      modeling.updateProperties(connection, props);
    });
  }
  FlowlaneBehavior.$inject = ["eventBus", "commandStack", "modeling"];

  var flowlaneModule = {
    __init__: ["flowlanePalette", "flowlaneContextPad", "flowlaneBehavior"],
    flowlanePalette: ["type", FlowlanePalette],
    flowlaneContextPad: ["type", FlowlaneContextPad],
    flowlaneBehavior: ["type", FlowlaneBehavior]
  };

  // ---- the modeler ------------------------------------------------------------------------------

  var bpmnjs = new window.BpmnJS({
    container: "#canvas",
    keyboard: {},
    moddleExtensions: { flowlane: moddleDescriptor },
    additionalModules: [flowlaneModule]
  });
  window.bpmnjs = bpmnjs;  // for the browser tests and the curious

  var canvas = bpmnjs.get("canvas");
  var modeling = bpmnjs.get("modeling");
  var registry = bpmnjs.get("elementRegistry");
  var selection = bpmnjs.get("selection");
  var overlays = bpmnjs.get("overlays");
  var eventBus = bpmnjs.get("eventBus");
  var commandStack = bpmnjs.get("commandStack");
  var bpmnFactory = bpmnjs.get("bpmnFactory");

  var statusNode = document.getElementById("designer-status");
  function status(text, kind) {
    if (!statusNode) { return; }
    statusNode.textContent = text;
    statusNode.className = "designer-status " + (kind || "");
  }

  function rootElement() { return canvas.getRootElement(); }

  // Fit the diagram into the canvas beside the palette (which floats over its left edge),
  // never larger than 100 %, centred vertically.
  function fitBesidePalette() {
    canvas.zoom("fit-viewport", "auto");
    if (canvas.zoom() > 1) { canvas.zoom(1, "auto"); }
    var palette = document.querySelector(".djs-palette");
    var box = canvas._container.getBoundingClientRect();
    var inner = canvas.viewbox().inner;
    if (!palette || !inner || inner.width <= 0 || inner.height <= 0) { return; }
    var room = palette.getBoundingClientRect().right - box.left + 24;
    var width = box.width - room - 24, height = box.height - 48;
    if (width < 120 || height < 120) { return; }
    var scale = Math.min(1, width / inner.width, height / inner.height);
    canvas.viewbox({
      x: inner.x - room / scale,
      y: inner.y - (box.height / scale - inner.height) / 2,
      width: box.width / scale,
      height: box.height / scale
    });
  }

  function importXml(xml) {
    return bpmnjs.importXML(xml).then(function () {
      fitBesidePalette();
      clearMarks();
      renderPanel();
    });
  }

  function currentXml() {
    return bpmnjs.saveXML({ format: true }).then(function (res) { return res.xml; });
  }

  function fail(err) {
    status(t("msg.failed") + " " + ((err && err.message) || err), "error");
  }

  // ---- markers and problems ---------------------------------------------------------------------

  var MARKS = ["fl-error", "fl-empty-exit", "fl-visited", "fl-waiting", "fl-incident"];

  function clearMarks(only) {
    registry.getAll().forEach(function (element) {
      (only || MARKS).forEach(function (mark) { canvas.removeMarker(element.id, mark); });
    });
    overlays.remove({ type: "fl-problem" });
    if (!only || only.indexOf("fl-visited") >= 0) { overlays.remove({ type: "fl-trace" }); }
  }

  function elementOfBlock(block) {
    if (!block) { return null; }
    var found = registry.get(block);
    if (found && !found.labelTarget) { return found; }
    var matches = registry.filter(function (e) {
      return e.businessObject && e.businessObject.get && e.businessObject.get("flowlane:block") === block;
    });
    return matches[0] || null;
  }

  function select(element) {
    if (element) {
      selection.select(element);
      canvas.scrollToElement(element);
    } else {
      selection.select(null);
    }
  }

  function addOverlay(element, text, kind, type) {
    overlays.add(element.id, type || "fl-problem", {
      position: { bottom: -6, left: 0 },
      html: el("div", { className: "fl-overlay " + (kind || ""), text: text })
    });
  }

  function markEmptyExits() {
    var found = [];
    registry.filter(isBlock).forEach(function (element) {
      var empty = emptyExits(element);
      if (empty.length) {
        canvas.addMarker(element.id, "fl-empty-exit");
        found.push({ element: element, exits: empty });
      }
    });
    return found;
  }

  function showProblems(problems) {
    clearMarks(["fl-error", "fl-empty-exit"]);
    var list = document.getElementById("problem-list");
    var box = document.getElementById("problems");
    list.innerHTML = "";
    var overlaid = {};
    (problems || []).forEach(function (p) {
      var element = elementOfBlock(p.block);
      var severity = p.severity || "error";
      if (element && severity === "error") { canvas.addMarker(element.id, "fl-error"); }
      if (element && !overlaid[element.id]) {
        overlaid[element.id] = true;
        addOverlay(element, p.message, severity === "error" ? "" : "warning");
      }
      var where = p.block ? p.block + (p.field ? "." + p.field : "") : t("msg.process_level");
      list.appendChild(el("li", {
        className: severity, tabindex: "0", "data-block": p.block || "",
        onclick: function () { select(element); }
      }, [el("span", { className: "sev", text: t("msg." + severity) }), " ",
        el("span", { className: "where", text: where }), " ", p.message]));
    });
    markEmptyExits().forEach(function (found) {
      found.exits.forEach(function (label) {
        list.appendChild(el("li", {
          className: "warning", tabindex: "0", "data-block": found.element.id,
          onclick: function () { select(found.element); }
        }, [el("span", { className: "sev", text: t("msg.warning") }), " ",
          el("span", { className: "where", text: found.element.id }), " ",
          t("msg.empty_exit", { exit: label })]));
      });
    });
    if (!list.children.length) { list.appendChild(el("li", { className: "ok", text: t("msg.no_problems") })); }
    box.hidden = false;
  }

  // ---- buttons -------------------------------------------------------------------------------------

  var BPMN_TYPE = "application/bpmn+xml";

  function validate() {
    status("…");
    return currentXml().then(function (xml) {
      return fl.api("POST", "/api/v1/processes/validate", xml, BPMN_TYPE);
    }).then(function (res) {
      showProblems(res.problems);
      var warnings = (res.problems || []).length > 0;
      if (res.valid) { status(warnings ? t("msg.valid_warnings") : t("msg.valid"), "ok"); }
      else { status(t("msg.invalid"), "error"); }
      return res;
    }).catch(function (err) {
      var problems = err.data && err.data.fields && err.data.fields.problems;
      if (problems) { showProblems(problems); }
      fail(err);
    });
  }

  function save() {
    status("…");
    return currentXml().then(function (xml) {
      return fl.api("POST", "/api/v1/processes", xml, BPMN_TYPE);
    }).then(function (res) {
      showProblems([]);
      document.getElementById("problems").hidden = true;
      status(res.created ? t("msg.saved", { version: res.version }) : t("msg.unchanged", { version: res.version }), "ok");
      if (!cfg.key || cfg.key !== res.key) {
        cfg.key = res.key;
        if (window.history && window.history.replaceState) {
          window.history.replaceState(null, "", "/processes/" + encodeURIComponent(res.key) + "/designer");
        }
      }
      cfg.version = res.version;
      return res;
    }).catch(function (err) {
      var problems = err.data && err.data.fields && err.data.fields.problems;
      if (problems) {
        showProblems(problems);
        status(t("msg.not_saved") + " " + (err.message || ""), "error");
      } else {
        fail(err);
      }
    });
  }

  function normalize() {
    status("…");
    return currentXml().then(function (xml) {
      return fl.api("POST", "/api/v1/processes/layout", xml, BPMN_TYPE);
    }).then(function (xml) {
      return importXml(typeof xml === "string" ? xml : xml.bpmn);
    }).then(function () { status(t("msg.normalized"), "ok"); }).catch(fail);
  }

  function showYaml() {
    return currentXml().then(function (xml) {
      return fl.api("POST", "/processes/designer/yaml", xml, BPMN_TYPE);
    }).then(function (res) {
      document.getElementById("yaml-text").textContent = res.yaml;
      var dialog = document.getElementById("yaml-dialog");
      if (dialog.showModal) { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
    }).catch(function (err) {
      var field = err.data && err.data.field;
      var element = elementOfBlock(field);
      if (element) { select(element); }
      fail(err);
    });
  }

  function download() {
    return currentXml().then(function (xml) {
      var blob = new Blob([xml], { type: BPMN_TYPE });
      var link = el("a", { href: URL.createObjectURL(blob), download: (rootElement().businessObject.id || "process") + ".bpmn" });
      document.body.appendChild(link);
      link.click();
      setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
    }).catch(fail);
  }

  // Open a BPMN file of another tool (or a downloaded one): the server reads it as a
  // flowlane process (plain elements by kind; what it cannot map is an error naming the
  // element) and sends it back in the designer's dialect with a fresh layout.
  function openFile() {
    var input = document.getElementById("file-open");
    if (input) { input.value = ""; input.click(); }
  }

  function opened(file) {
    status("…");
    clearOffer();
    var text;
    return file.text().then(function (xml) {
      text = xml;
      return fl.api("POST", "/api/v1/processes/layout", xml, BPMN_TYPE);
    }).then(function (xml) {
      return importXml(typeof xml === "string" ? xml : xml.bpmn);
    }).then(function () {
      status(t("msg.opened").replace("{file}", file.name), "ok");
    }).catch(function (err) {
      // Not mappable onto blocks: it may still run as a standard BPMN process (ADR 0012
      // "Hosting"). Else the mapping error stands, naming the elements by id.
      if (text === undefined || !err || err.status !== 422) { return fail(err); }
      return standardOffer(file.name, text, err).catch(function () { fail(err); });
    });
  }

  // ---- a standard BPMN diagram: deploy it as it is ------------------------------------------

  var offerNode = null;
  function clearOffer() { if (offerNode) { offerNode.remove(); offerNode = null; } }

  // The executable process of a diagram (id, name), read in the browser; null when none.
  function mainProcess(xml) {
    var doc = new DOMParser().parseFromString(xml, "application/xml");
    if (doc.getElementsByTagName("parsererror").length) { return null; }
    var all = doc.getElementsByTagNameNS("*", "process");
    var found = null;
    for (var i = 0; i < all.length; i++) {
      var p = all[i];
      if (p.getAttribute("isExecutable") === "false") { continue; }
      if (found) { return null; }  // more than one: the server would ask which
      found = { id: p.getAttribute("id") || "", name: p.getAttribute("name") || "" };
    }
    return found;
  }

  function standardSpec(process, xml, objectType) {
    var key = (process.id || "process").toLowerCase().replace(/[^a-z0-9_-]+/g, "-")
      .replace(/^[-_]+|-+$/g, "") || "process";
    var file = key + ".bpmn";
    var documents = {};
    documents[file] = xml;
    return {
      key: key,
      name: process.name || process.id,
      object: objectType,
      bpmn: { file: file, process: process.id, documents: documents }
    };
  }

  function standardOffer(fileName, xml, layoutErr) {
    var process = mainProcess(xml);
    var types = cfg.objectTypes || [];
    if (!process || !types.length) { return Promise.reject(layoutErr); }
    var spec = standardSpec(process, xml, types[0].key);
    var source = function () { return { source: JSON.stringify(spec) }; };
    return fl.api("POST", "/api/v1/processes/validate", source()).then(function (res) {
      if (!res.valid) { throw layoutErr; }
      return bpmnjs.importXML(xml).then(function () {
        fitBesidePalette(); clearMarks(); renderPanel();
      }).catch(function () { /* shown or not, it can still be deployed */ });
    }).then(function () {
      status(t("msg.standard_offer", { file: fileName, reason: layoutErr.message }), "ok");
      var select = el("select", { id: "fl-standard-object", "data-field": "fl-standard-object" });
      types.forEach(function (type) {
        select.appendChild(el("option", { value: type.key,
          text: type.label && type.label !== type.key ? type.label + " (" + type.key + ")" : type.key }));
      });
      select.addEventListener("change", function () { spec.object = select.value; });
      var button = el("button", { type: "button", id: "btn-deploy-standard", className: "primary",
        text: t("btn.deploy_standard"), onclick: function () {
          button.disabled = true;
          status("…");
          fl.api("POST", "/api/v1/processes", source()).then(function (res) {
            status(t("msg.standard_deployed", { key: res.key, version: res.version }), "ok");
            window.location.href = "/processes/" + encodeURIComponent(res.key) + "/designer";
          }).catch(function (e) {
            button.disabled = false;
            var problems = e.data && e.data.fields && e.data.fields.problems;
            if (problems) { showProblems(problems); }
            fail(e);
          });
        } });
      offerNode = el("section", { id: "standard-offer", className: "panel standard-offer" }, [
        el("h2", { text: t("panel.standard") }),
        el("p", { className: "small", text: t("msg.standard_offer", { file: fileName, reason: layoutErr.message }) }),
        fieldBox(t("panel.object"), select, null, "fl-standard-object"),
        el("p", {}, [button])
      ]);
      var bar = document.querySelector(".designer-toolbar");
      if (bar) { bar.insertAdjacentElement("afterend", offerNode); } else { panel.parentNode.insertBefore(offerNode, panel); }
    });
  }

  var fileInput = document.getElementById("file-open");
  if (fileInput) {
    fileInput.addEventListener("change", function () {
      if (fileInput.files && fileInput.files[0]) { opened(fileInput.files[0]); }
    });
  }

  function on(id, handler) {
    var node = document.getElementById(id);
    if (node) { node.addEventListener("click", function () { handler(); }); }
  }
  on("btn-validate", validate);
  on("btn-save", save);
  on("btn-normalize", normalize);
  on("btn-yaml", showYaml);
  on("btn-download", download);
  on("btn-open", openFile);

  // ---- the properties panel --------------------------------------------------------------------

  var panel = document.getElementById("properties");
  var shown = null;

  function fieldBox(label, input, hint, id) {
    var lab = el("label", { "for": id, text: label });
    return el("div", { className: "field" }, [lab, input, hint ? el("p", { className: "hint", text: hint }) : null]);
  }

  function errorAfter(input, message) {
    var next = input.nextElementSibling;
    if (next && next.classList.contains("field-error")) { next.remove(); }
    input.classList.toggle("invalid", !!message);
    input.setAttribute("aria-invalid", message ? "true" : "false");
    if (message) {
      input.insertAdjacentElement("afterend", el("p", { className: "field-error", role: "alert", text: message }));
    }
  }

  function textInput(id, value, onChange, attrs) {
    var input = el("input", Object.assign({ id: id, type: "text", "data-field": id, value: value == null ? "" : String(value),
      disabled: !cfg.editable }, attrs || {}));
    input.addEventListener("change", function () { onChange(input.value, input); });
    input.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); input.blur(); } });
    return input;
  }

  function jsonArea(id, value, onChange, wantObject) {
    var area = el("textarea", { id: id, className: "code", "data-field": id, spellcheck: "false", disabled: !cfg.editable });
    area.value = value === undefined ? "" : JSON.stringify(value, null, 2);
    area.addEventListener("change", function () {
      var text = area.value.trim();
      if (!text) { errorAfter(area, null); onChange(undefined, area); return; }
      var parsed;
      try { parsed = JSON.parse(text); } catch (e) {
        errorAfter(area, t("err.json") + " " + e.message);
        return;
      }
      if (wantObject && (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))) {
        errorAfter(area, t("err.json_object"));
        return;
      }
      errorAfter(area, null);
      onChange(parsed, area);
    });
    return area;
  }

  function update(element, properties, flows) {
    commandStack.execute("flowlane.updateBlock", { element: element, properties: properties, flows: flows || [] });
  }

  function setParams(element, params, extra, flows) {
    var props = Object.assign({}, extra || {});
    props["flowlane:params"] = Object.keys(params).length ? JSON.stringify(params) : undefined;
    update(element, props, flows);
  }

  function renderPanel() {
    if (!panel) { return; }
    var focused = document.activeElement && panel.contains(document.activeElement)
      ? document.activeElement.getAttribute("data-field") : null;
    var selected = selection.get();
    var element = selected.length === 1 ? selected[0] : null;
    if (element && element.labelTarget) { element = element.labelTarget; }
    shown = element;
    panel.innerHTML = "";
    if (!element || element === rootElement() || element.type === "bpmn:Process") {
      renderProcess(rootElement());
    } else if (element.type === "bpmn:SequenceFlow") {
      renderFlow(element);
    } else {
      renderBlock(element);
    }
    if (!cfg.editable) { panel.insertBefore(el("p", { className: "muted small", text: t("panel.readonly") }), panel.firstChild); }
    if (focused) {
      var again = panel.querySelector('[data-field="' + focused + '"]');
      if (again) { again.focus(); }
    }
  }

  function settingsOf(root) {
    var raw = root.businessObject.get("flowlane:settings");
    if (!raw) { return {}; }
    try { var parsed = JSON.parse(raw); return parsed && typeof parsed === "object" ? parsed : {}; }
    catch (e) { return {}; }
  }

  function renderProcess(root) {
    if (!root || !root.businessObject) { return; }
    var process = root.businessObject;
    var settings = settingsOf(root);
    panel.appendChild(el("h2", { text: t("panel.process") }));
    var key = textInput("fl-process-key", process.id, function (value, input) {
      value = value.trim();
      if (!/^[a-z0-9][a-z0-9_-]*$/.test(value)) { errorAfter(input, t("err.key")); return; }
      if (value !== process.id && registry.get(value)) { errorAfter(input, t("err.id_taken")); return; }
      errorAfter(input, null);
      if (value !== process.id) { modeling.updateProperties(root, { id: value }); }
    });
    panel.appendChild(fieldBox(t("panel.key"), key, null, "fl-process-key"));
    var name = textInput("fl-process-name", process.name, function (value) {
      modeling.updateProperties(root, { name: value });
    });
    panel.appendChild(fieldBox(t("panel.name"), name, null, "fl-process-name"));
    var typeSelect = el("select", { id: "fl-process-object", "data-field": "fl-process-object", disabled: !cfg.editable });
    var known = false;
    (cfg.objectTypes || []).forEach(function (type) {
      var option = el("option", { value: type.key, text: type.label && type.label !== type.key ? type.label + " (" + type.key + ")" : type.key });
      if (type.key === settings.object) { option.selected = true; known = true; }
      typeSelect.appendChild(option);
    });
    if (settings.object && !known) {
      typeSelect.insertBefore(el("option", { value: settings.object, text: settings.object, selected: true }), typeSelect.firstChild);
    }
    typeSelect.addEventListener("change", function () {
      var next = settingsOf(root);
      next.object = typeSelect.value;
      modeling.updateProperties(root, { "flowlane:settings": JSON.stringify(next) });
    });
    panel.appendChild(fieldBox(t("panel.object"), typeSelect, null, "fl-process-object"));
    var rest = Object.assign({}, settings);
    delete rest.object;
    var area = jsonArea("fl-process-settings", rest, function (value) {
      var next = Object.assign({}, value || {});
      next.object = settingsOf(root).object || typeSelect.value;
      modeling.updateProperties(root, { "flowlane:settings": JSON.stringify(next) });
    }, true);
    area.rows = 10;
    panel.appendChild(fieldBox(t("panel.settings"), area, null, "fl-process-settings"));
  }

  function renderFlow(flow) {
    var source = flow.source;
    var business = flow.businessObject;
    panel.appendChild(el("h2", { text: t("panel.flow") }));
    panel.appendChild(el("dl", { className: "fields" }, [
      el("dt", { text: t("panel.from") }), el("dd", { text: source ? source.id : "" }),
      el("dt", { text: t("panel.to") }), el("dd", { text: flow.target ? flow.target.id : "" })
    ]));
    var current = exitOf(flow);
    var labels = source && isBlock(source) ? exitLabels(source) : [];
    var exitSelect = el("select", { id: "fl-flow-exit", "data-field": "fl-flow-exit", disabled: !cfg.editable });
    exitSelect.appendChild(el("option", { value: "", text: t("panel.no_exit") }));
    var used = source ? usedExits(source) : [];
    labels.forEach(function (label) {
      var taken = used.indexOf(label) >= 0 && label !== current;
      exitSelect.appendChild(el("option", { value: label, text: label + (taken ? " ✓" : ""), selected: label === current }));
    });
    if (current && labels.indexOf(current) < 0) {
      exitSelect.appendChild(el("option", { value: current, text: current, selected: true }));
    }
    exitSelect.addEventListener("change", function () {
      var value = exitSelect.value;
      var props = { "flowlane:exit": value || undefined };
      var oldAuto = exitName(source, current);
      if (!business.name || business.name === oldAuto) { props.name = exitName(source, value) || undefined; }
      modeling.updateProperties(flow, props);
    });
    panel.appendChild(fieldBox(t("panel.exit"), exitSelect, null, "fl-flow-exit"));
    var label = textInput("fl-flow-label", business.name, function (value) {
      modeling.updateProperties(flow, { name: value || undefined });
    });
    panel.appendChild(fieldBox(t("panel.label"), label, null, "fl-flow-label"));
  }

  // Flows of ``element`` whose exit matches ``test``: [{connection, properties}] from ``make``.
  function flowChanges(element, make) {
    var out = [];
    outgoing(element).forEach(function (connection) {
      var props = make(exitOf(connection), connection);
      if (props) { out.push({ connection: connection, properties: props }); }
    });
    return out;
  }

  function renderNames(element, params, key) {
    var names = Object.keys(params[key] || {});
    var prefix = NAMED_EXITS[key] + ".";
    var box = el("div", { className: "names", id: "fl-param-" + key, role: "group" });
    function write(nextNames, renamed) {
      var next = Object.assign({}, paramsOf(element));
      var obj = {};
      nextNames.forEach(function (n) { obj[n] = null; });
      next[key] = obj;
      var flows = flowChanges(element, function (exit, connection) {
        if (exit.indexOf(prefix) !== 0) { return null; }
        var old = exit.slice(prefix.length);
        var now = renamed && Object.prototype.hasOwnProperty.call(renamed, old) ? renamed[old] : old;
        if (now === old && nextNames.indexOf(old) >= 0) { return null; }
        var props = { "flowlane:exit": now === null || nextNames.indexOf(now) < 0 ? undefined : prefix + now };
        if (connection.businessObject.name === old) { props.name = now || undefined; }
        return props;
      });
      setParams(element, next, null, flows);
    }
    names.forEach(function (name, i) {
      var input = textInput("fl-" + key + "-" + i, name, function (value, node) {
        value = value.trim();
        var current = Object.keys(paramsOf(element)[key] || {});
        if (!value) { errorAfter(node, t("err.id")); return; }
        if (value !== name && current.indexOf(value) >= 0) { errorAfter(node, t("err.name_taken")); return; }
        var renamed = {};
        renamed[name] = value;
        write(current.map(function (n) { return n === name ? value : n; }), renamed);
      }, { "aria-label": key + " " + (i + 1) });
      var remove = el("button", { type: "button", title: t("panel.remove"), "aria-label": t("panel.remove") + " " + name,
        disabled: !cfg.editable, text: "×", onclick: function () {
          var current = Object.keys(paramsOf(element)[key] || {});
          var renamed = {};
          renamed[name] = null;
          write(current.filter(function (n) { return n !== name; }), renamed);
        } });
      box.appendChild(el("div", { className: "name-row" }, [input, remove]));
    });
    box.appendChild(el("div", {}, [el("button", { type: "button", id: "fl-" + key + "-add", disabled: !cfg.editable, text: "+ " + t("panel.add_option"),
      onclick: function () {
        var current = Object.keys(paramsOf(element)[key] || {});
        var n = current.length + 1;
        while (current.indexOf("option_" + n) >= 0) { n += 1; }
        write(current.concat(["option_" + n]), {});
      } })]));
    return box;
  }

  function renderBranches(element, params) {
    var branches = params.branches || [];
    var box = el("div", { className: "names", id: "fl-param-branches", role: "group" });
    function write(next, remap) {
      var all = Object.assign({}, paramsOf(element));
      all.branches = next;
      var flows = flowChanges(element, function (exit) {
        var m = /^branches\[(\d+)\]$/.exec(exit);
        if (!m) { return null; }
        var i = Number(m[1]);
        var to = remap ? remap(i) : i;
        var props = {};
        if (to !== i) { props["flowlane:exit"] = to === null ? undefined : "branches[" + to + "]"; }
        if (to !== null && next[to]) {
          props.conditionExpression = bpmnFactory.create("bpmn:FormalExpression", { body: String(next[to]["if"] || "") });
        }
        return Object.keys(props).length ? props : null;
      });
      setParams(element, all, null, flows);
    }
    branches.forEach(function (branch, i) {
      var input = textInput("fl-branches-" + i, branch["if"], function (value) {
        var next = (paramsOf(element).branches || []).map(function (b) { return Object.assign({}, b); });
        if (next[i]) { next[i]["if"] = value; }
        write(next, null);
      }, { "aria-label": "if " + (i + 1), placeholder: "object.amount > 0" });
      var remove = el("button", { type: "button", "aria-label": t("panel.remove") + " " + (i + 1), disabled: !cfg.editable,
        text: "×", onclick: function () {
          var next = (paramsOf(element).branches || []).filter(function (_b, j) { return j !== i; });
          write(next, function (j) { return j === i ? null : (j > i ? j - 1 : j); });
        } });
      box.appendChild(el("div", { className: "name-row" }, [el("span", { className: "muted small", text: "if" }), input, remove]));
    });
    box.appendChild(el("div", {}, [el("button", { type: "button", id: "fl-branches-add", disabled: !cfg.editable,
      text: "+ " + t("panel.add_option"), onclick: function () {
        var next = (paramsOf(element).branches || []).concat([{ "if": "" }]);
        write(next, null);
      } })]));
    return box;
  }

  function parseScalar(text, allowNumber) {
    var trimmed = text.trim();
    if (allowNumber && trimmed !== "" && !isNaN(Number(trimmed))) { return Number(trimmed); }
    return text;
  }

  function renderParam(element, params, name, prop, required) {
    var id = "fl-param-" + name;
    var kind = paramKind(prop);
    var resolved = resolve(prop);
    var hint = resolved.description || prop.description || null;
    var label = name + (required ? " *" : "");
    var value = params[name];
    function write(newValue) {
      var next = Object.assign({}, paramsOf(element));
      if (newValue === undefined || newValue === "" || newValue === null) { delete next[name]; }
      else { next[name] = newValue; }
      var extra = null;
      if (name === "process" && (blockType(element) === "subprocess" || blockType(element) === "for_each")) {
        extra = { calledElement: newValue || undefined };
      }
      var flows = [];
      if (name === "timeout" && !newValue) {
        flows = flowChanges(element, function (exit) { return exit === "on_timeout" ? { "flowlane:exit": undefined } : null; });
      }
      setParams(element, next, extra, flows);
    }
    var input;
    if (kind.kind === "bool") {
      input = el("input", { type: "checkbox", id: id, "data-field": id, disabled: !cfg.editable });
      input.checked = value === undefined ? !!resolved["default"] : !!value;
      input.addEventListener("change", function () { write(input.checked); });
      return el("div", { className: "field" }, [el("label", { className: "check", "for": id }, [input, label]),
        hint ? el("p", { className: "hint", text: hint }) : null]);
    }
    if (kind.kind === "enum") {
      input = el("select", { id: id, "data-field": id, disabled: !cfg.editable });
      input.appendChild(el("option", { value: "", text: resolved["default"] !== undefined ? "(" + resolved["default"] + ")" : "—" }));
      kind.values.forEach(function (v) {
        input.appendChild(el("option", { value: v, text: v, selected: value === v }));
      });
      input.addEventListener("change", function () { write(input.value || undefined); });
      return fieldBox(label, input, hint, id);
    }
    if (kind.kind === "json") {
      input = jsonArea(id, value, function (parsed) { write(parsed); }, false);
      return fieldBox(label, input, hint || t("panel.json_hint"), id);
    }
    var shownValue = value;
    if (kind.kind === "mixed" && value !== undefined && typeof value === "object") { shownValue = JSON.stringify(value); }
    input = textInput(id, shownValue, function (text, node) {
      if (kind.kind === "number") {
        if (text.trim() !== "" && isNaN(Number(text.trim()))) { errorAfter(node, t("err.number")); return; }
        errorAfter(node, null);
        write(text.trim() === "" ? undefined : Number(text.trim()));
        return;
      }
      if (kind.kind === "mixed" && /^\s*[[{]/.test(text)) {
        try { write(JSON.parse(text)); errorAfter(node, null); } catch (e) { errorAfter(node, t("err.json") + " " + e.message); }
        return;
      }
      write(kind.kind === "scalar" ? parseScalar(text, true) : text);
    });
    if (resolved["default"] !== undefined && resolved["default"] !== null && typeof resolved["default"] !== "object") {
      input.placeholder = String(resolved["default"]);
    }
    return fieldBox(label, input, hint, id);
  }

  function renderBlock(element) {
    var type = blockType(element);
    var business = element.businessObject;
    panel.appendChild(el("h2", { text: t("panel.block") + (type ? ": " + t("type." + type) : "") }));
    var idInput = textInput("fl-block-id", business.id, function (value, input) {
      value = value.trim();
      if (!/^[A-Za-z_][\w.-]*$/.test(value)) { errorAfter(input, t("err.id")); return; }
      if (value !== business.id && registry.get(value)) { errorAfter(input, t("err.id_taken")); return; }
      errorAfter(input, null);
      if (value !== business.id) {
        var props = { id: value };
        if (business.get("flowlane:block")) { props["flowlane:block"] = undefined; }
        modeling.updateProperties(element, props);
      }
    });
    panel.appendChild(fieldBox(t("panel.id"), idInput, null, "fl-block-id"));
    var name = textInput("fl-block-name", business.name, function (value) {
      modeling.updateProperties(element, { name: value || undefined });
    });
    panel.appendChild(fieldBox(t("panel.name"), name, null, "fl-block-name"));
    panel.appendChild(fieldBox(t("panel.type"), el("input", { id: "fl-block-type", type: "text", readonly: true,
      className: "readonly", value: type || element.type }), null, "fl-block-type"));
    var def = type ? blockDef(type) : null;
    if (!def) { return; }
    var params = paramsOf(element);
    var required = def.required || [];
    Object.keys(def.properties || {}).forEach(function (name) {
      if (name === "type" || name === "name" || EXIT_PARAMS[name]) { return; }
      var prop = def.properties[name];
      if (NAMED_EXITS[name]) {
        panel.appendChild(el("div", { className: "field" }, [
          el("label", { "for": "fl-param-" + name, text: t(name === "options" ? "panel.options" : "panel.exits") }),
          renderNames(element, params, name)]));
        return;
      }
      if (name === "branches" && type === "condition") {
        panel.appendChild(el("div", { className: "field" }, [
          el("label", { "for": "fl-param-branches", text: t("panel.branches") }), renderBranches(element, params)]));
        return;
      }
      panel.appendChild(renderParam(element, params, name, prop, required.indexOf(name) >= 0));
    });
  }

  eventBus.on("selection.changed", function () { renderPanel(); });
  eventBus.on("commandStack.changed", function () {
    renderPanel();
    var problems = document.getElementById("problems");
    if (problems && !problems.hidden) {
      clearMarks(["fl-empty-exit"]);
      markEmptyExits();
    }
  });
  eventBus.on("import.done", function () { renderPanel(); });

  // ---- test run --------------------------------------------------------------------------------

  function drawTrace(run, instance) {
    clearMarks();
    var list = document.getElementById("trace");
    list.innerHTML = "";
    var visited = {};
    var waiting = {};
    var incident = {};
    (instance && instance.tokens || []).forEach(function (token) {
      if (instance.status === "incident") { incident[token.block] = true; }
      else if (token.waits_for || instance.status === "running") { waiting[token.block] = true; }
    });
    (run.trace || []).forEach(function (line) {
      if (line.block && line.event === "entered") { visited[line.block] = true; }
      if (line.block && /incident|failed/.test(line.event)) { incident[line.block] = true; }
      var kind = incident[line.block] && /incident|failed/.test(line.event) ? "incident" : "";
      var time = String(line.time || "").replace(/^.*T(\d\d:\d\d:\d\d).*$/, "$1");
      var details = line.details && Object.keys(line.details).length ? JSON.stringify(line.details) : "";
      var item = el("li", { className: kind, "data-block": line.block || "" }, [
        el("span", { className: "muted", text: time }), " ", el("span", { className: "event", text: line.event }),
        line.block ? " · " : "", line.block ? el("code", { text: line.block }) : null,
        details ? el("span", { className: "muted small", text: " " + details }) : null
      ]);
      item.addEventListener("click", function () { select(elementOfBlock(line.block)); });
      list.appendChild(item);
    });
    Object.keys(visited).forEach(function (block) {
      var element = elementOfBlock(block);
      if (element && !waiting[block] && !incident[block]) { canvas.addMarker(element.id, "fl-visited"); }
    });
    Object.keys(waiting).forEach(function (block) {
      var element = elementOfBlock(block);
      if (element) {
        canvas.addMarker(element.id, "fl-waiting");
        addOverlay(element, t("msg.waiting"), "trace waiting", "fl-trace");
      }
    });
    Object.keys(incident).forEach(function (block) {
      var element = elementOfBlock(block);
      if (element) {
        canvas.addMarker(element.id, "fl-incident");
        addOverlay(element, t("msg.incident") + (instance && instance.incident ? ": " + instance.incident : ""), "trace incident", "fl-trace");
      }
    });
  }

  var form = document.getElementById("testrun-form");
  if (form) {
    var objectInput = document.getElementById("testrun-object");
    var runStatus = document.getElementById("testrun-status");
    document.querySelectorAll(".recent-objects [data-object]").forEach(function (button) {
      button.addEventListener("click", function () { objectInput.value = button.getAttribute("data-object"); objectInput.focus(); });
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!cfg.key) { runStatus.textContent = t("msg.test_saved_first"); return; }
      var objectId = objectInput.value.trim();
      if (!objectId) { runStatus.textContent = t("msg.test_object"); return; }
      runStatus.textContent = "…";
      var run;
      fl.api("POST", "/api/v1/processes/" + encodeURIComponent(cfg.key) + "/test-run", { object: objectId })
        .then(function (res) {
          run = res;
          return fl.api("GET", "/api/v1/instances/" + encodeURIComponent(res.instance_id)).catch(function () { return null; });
        })
        .then(function (instance) {
          runStatus.textContent = t("msg.test_status", { instance: run.instance_id, status: run.status });
          drawTrace(run, instance);
        })
        .catch(function (err) {
          runStatus.textContent = t("msg.failed") + " " + (err.message || err);
        });
    });
  }

  // ---- start -----------------------------------------------------------------------------------

  status(t("msg.loading"));
  var load = cfg.bpmn
    ? Promise.resolve(cfg.bpmn)
    : fl.api("GET", "/api/v1/processes/" + encodeURIComponent(cfg.key) + "/bpmn");
  load.then(function (xml) {
    return importXml(typeof xml === "string" ? xml : xml.bpmn);
  }).then(function () {
    status(cfg.standard ? t("msg.standard_shown") : "");
    document.getElementById("canvas").setAttribute("data-ready", "true");
  }).catch(function (err) {
    status(t("msg.load_failed") + " " + ((err && err.message) || err), "error");
  });
})();
