-- Shortcodes of the supplement (the same ones helpers/build/render.py resolves without Quarto):
--   {{< res os.text.median_CMT >}}  the value at that dotted path of _output/results.json
--   {{< synthetic-notice >}}        the synthetic-data notice when data.synthetic is true
--   {{< renderer >}}                one sentence naming the renderer (for the colophon), then the build
--                                   sentence (date, commit, modified) of $SUPPLEMENT_BUILD_SENTENCE
-- results.json is found at $SUPPLEMENT_RESULTS, else <project>/_output/results.json.

local cache = nil
-- shown for a prose value that this cohort's analysis did not produce (helpers.build.render.MISSING_TEXT)
local MISSING_TEXT = "not estimated for this cohort"

local function results_path()
  local env = os.getenv("SUPPLEMENT_RESULTS")
  if env and env ~= "" then return env end
  local dir = (quarto and quarto.project and quarto.project.directory) or "."
  return dir .. "/_output/results.json"
end

local function load_results()
  if cache then return cache end
  local path = results_path()
  local fh = io.open(path, "r")
  if not fh then error("res shortcode: " .. path .. " does not exist; execute the notebooks first") end
  local text = fh:read("a")
  fh:close()
  cache = pandoc.json.decode(text, false)
  return cache
end

local function lookup(path)
  local node = load_results()
  for part in string.gmatch(path, "[^.]+") do
    local key = part
    if type(node) == "table" and node[key] == nil and tonumber(part) then key = tonumber(part) + 1 end
    if type(node) ~= "table" or node[key] == nil then
      error("{{< res " .. path .. " >}}: results.json has no '" .. path .. "' (stopped at '" .. part .. "')")
    end
    node = node[key]
  end
  return node
end

local function as_text(value, path)
  if value == pandoc.json.null then return "not available" end
  local kind = type(value)
  if kind == "table" then error("results.json '" .. path .. "' is not a value to print") end
  if kind == "boolean" then return value and "true" or "false" end
  if kind == "number" and math.type(value) == "float" and value == math.floor(value)
     and math.abs(value) < 2^53 then
    return string.format("%d", math.tointeger(value))   -- JSON 87 arrives as a float: print "87"
  end
  return tostring(value)
end

local function notice_file()
  local path = "synthetic-notice.md"
  if quarto and quarto.utils and quarto.utils.resolve_path then path = quarto.utils.resolve_path(path) end
  local fh = io.open(path, "r")
  if not fh then error("res extension: " .. path .. " is missing") end
  local text = fh:read("a")
  fh:close()
  return text
end

return {
  ["res"] = function(args)
    local path = pandoc.utils.stringify(args[1])
    local ok, value = pcall(lookup, path)
    if not ok then
      -- a prose value that exists only for some cohorts (a term the model did not select, a level
      -- that is not sparse): say so in the text, warn, and go on (as helpers/build/render.py does)
      local parent = string.match(path, "^(.*%.text)%.[^.]+$")
      if parent and pcall(lookup, parent) and os.getenv("SUPPLEMENT_STRICT_RESULTS") ~= "1" then
        if quarto and quarto.log then quarto.log.warning("res: " .. path .. " is not in results.json for this cohort") end
        return pandoc.Emph(pandoc.Inlines({pandoc.Str(MISSING_TEXT)}))
      end
      error(value)
    end
    local text = as_text(value, path)
    -- a value may carry Markdown (a citation, code): read it as the fallback renderer does
    local blocks = pandoc.read(text, "markdown").blocks
    if #blocks == 1 and blocks[1].t == "Para" then return blocks[1].content end
    return pandoc.Str(text)
  end,

  ["synthetic-notice"] = function()
    local data = load_results()["data"]
    if type(data) ~= "table" or data["synthetic"] ~= true then return pandoc.Blocks({}) end
    return pandoc.BlockQuote(pandoc.read(notice_file(), "markdown").blocks)
  end,

  ["renderer"] = function()
    local version = (quarto and quarto.version) and tostring(quarto.version) or "unknown version"
    local text = "Rendered with Quarto " .. version .. " from the notebooks as executed by the build."
    -- build date, git commit and whether the tree was modified, in the words of
    -- helpers.build.render.build_sentence (set by render_with_quarto: the staged copy has no git)
    local build = os.getenv("SUPPLEMENT_BUILD_SENTENCE")
    if build and build ~= "" then text = text .. " " .. build end
    return pandoc.Inlines(pandoc.read(text, "markdown").blocks[1].content)
  end,
}
