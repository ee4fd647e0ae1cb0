-- specc for Neovim: *.cnn files get the filetype `cnn`, `#` comments and specc's language server
-- (diagnostics as you type, hover, completion, go to definition, rename, formatting; each line's
-- output shape as an inlay hint on Neovim 0.10+). Works from Neovim 0.7 (Debian's).
--
-- Install: copy this file to ~/.config/nvim/plugin/specc.lua (or `dofile()` it from init.lua).
-- specc not on PATH (say, in a virtual environment)? Set the command before this file runs:
--   vim.g.specc_lsp_cmd = { "/path/to/.venv/bin/specc", "lsp" }

vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, {
  pattern = "*.cnn",
  callback = function(args)
    vim.bo[args.buf].filetype = "cnn"
  end,
})

local client_id = nil -- Neovim 0.7: one server for every .cnn buffer

local function start_server(bufnr)
  local config = {
    name = "specc",
    cmd = vim.g.specc_lsp_cmd or { "specc", "lsp" },
    root_dir = vim.fn.getcwd(),
  }
  if vim.lsp.start then -- Neovim 0.8+: starts the server once and reuses it
    vim.lsp.start(config, { bufnr = bufnr })
    return
  end
  if client_id == nil or vim.lsp.client_is_stopped(client_id) then
    client_id = vim.lsp.start_client(config)
  end
  vim.lsp.buf_attach_client(bufnr, client_id)
end

vim.api.nvim_create_autocmd("FileType", {
  pattern = "cnn",
  callback = function(args)
    vim.bo[args.buf].commentstring = "# %s"
    start_server(args.buf)
    -- Neovim 0.10+: show the shapes the server sends at the end of each line
    if type(vim.lsp.inlay_hint) == "table" and vim.lsp.inlay_hint.enable then
      pcall(vim.lsp.inlay_hint.enable, true, { bufnr = args.buf })
    end
  end,
})
