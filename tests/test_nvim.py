"""A real editor as the client: headless Neovim starts `specc lsp` for *.cnn and shows its diagnostic.

Debian's Neovim 0.7 predates inlay hints (and `vim.lsp.start`), so the client is set up with
`vim.lsp.start_client`, and the test covers diagnostics and hover. Skipped without `nvim`,
except under CI (which installs it).
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

import specc

INIT_LUA = r"""
local out = os.getenv("SPECC_NVIM_OUT")
local result = {}
local client_id = nil

local function finish()
  local file = io.open(out, "w")
  file:write(vim.fn.json_encode(result))
  file:close()
  vim.cmd("qall!")
end

vim.api.nvim_create_autocmd("BufReadPost", {
  pattern = "*.cnn",
  callback = function(args)
    if client_id == nil then
      client_id = vim.lsp.start_client({
        name = "specc",
        cmd = { os.getenv("SPECC_PYTHON"), "-m", "specc", "lsp" },
        root_dir = vim.fn.getcwd(),
        on_exit = function(code, signal) result.exit_code = code end,
      })
    end
    vim.lsp.buf_attach_client(args.buf, client_id)
  end,
})

vim.api.nvim_create_autocmd("VimEnter", {
  callback = function()
    local ok = vim.wait(20000, function() return #vim.diagnostic.get(0) > 0 end, 20)
    result.diagnostics = {}
    for _, d in ipairs(vim.diagnostic.get(0)) do
      table.insert(result.diagnostics, { lnum = d.lnum, col = d.col, end_col = d.end_col,
                                         message = d.message, source = d.source })
    end
    local params = { textDocument = { uri = vim.uri_from_bufnr(0) }, position = { line = 1, character = 1 } }
    local replies = vim.lsp.buf_request_sync(0, "textDocument/hover", params, 10000) or {}
    for _, reply in pairs(replies) do
      if reply.result then result.hover = reply.result.contents.value end
    end
    vim.lsp.stop_client(client_id)
    vim.wait(10000, function() return result.exit_code ~= nil end, 20)
    finish()
  end,
})
"""

BROKEN = """\
input 1x227x227
conv 11x11 96 s4 p1 -> relu -> maxpool 3 s2 -> conv 5x5 256 p2 -> relu -> maxpool 3 s2
-> conv 3x3 384 p1 -> relu -> conv 3x3 256 p1 -> relu -> maxpool 3 s2
-> flatten
-> fc 4096 in=6400 -> relu -> fc 10
"""


def nvim_or_skip() -> str:
    found = shutil.which("nvim")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI installs neovim, but nvim is not on PATH")
        pytest.skip("needs Neovim (apt-get install neovim)")
    return found


def test_neovim_shows_the_diagnostic_and_a_hover(tmp_path):
    nvim = nvim_or_skip()
    (tmp_path / "init.lua").write_text(INIT_LUA)
    spec = tmp_path / "alexnet227.cnn"
    spec.write_text(BROKEN)
    out = tmp_path / "result.json"
    env = {**os.environ, "SPECC_NVIM_OUT": str(out), "SPECC_PYTHON": sys.executable}
    run = subprocess.run([nvim, "--headless", "--clean", "-u", str(tmp_path / "init.lua"), str(spec)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.exists(), run.stdout + run.stderr
    result = json.loads(out.read_text())
    with pytest.raises(specc.SpecError) as expected:
        specc.load(spec)
    (diag,) = result["diagnostics"]
    assert (diag["lnum"] + 1, diag["col"] + 1) == (expected.value.line, expected.value.column)
    assert diag["end_col"] == diag["col"] + len("fc 4096 in=6400")
    assert diag["message"] == f"{expected.value.message}\nhint: {expected.value.hint}"
    assert diag["source"] == "specc"
    assert "nn.Conv2d(1, 96, kernel_size=(11, 11), stride=(4, 4), padding=(1, 1))" in result["hover"]
    assert result["exit_code"] == 0  # Neovim's shutdown and exit
