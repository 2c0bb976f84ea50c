# Bash completion of tessera: its commands, their flags and the global
# ones, and the values of list's --state and --output. It asks the tessera
# being completed (`tessera __complete WORD... CURRENT`, hub/cli_complete.h),
# so the words offered are always that program's own. Where tessera knows
# no values (agent ids, types, paths) bash offers file names.
#
# `meson install` puts it in <datadir>/bash-completion/completions/tessera,
# where bash-completion loads it on the first Tab after `tessera`; without
# bash-completion: source deploy/completion/tessera.bash (e.g. in ~/.bashrc).

_tessera() {
	local line=${COMP_LINE:0:COMP_POINT} cur=${COMP_WORDS[COMP_CWORD]}
	local prog=${COMP_WORDS[0]/#\~/$HOME} prefix w
	local -a words candidates

	# The words as typed: COMP_WORDS is also split at every = and :
	# (--state=running, --hub host:7000).
	read -ra words <<<"$line"
	if [[ ${#words[@]} -eq 0 || $line == *[[:blank:]] ]]; then
		words+=("")
	fi
	mapfile -t candidates < <("$prog" __complete "${words[@]:1}" 2>/dev/null)
	# Bash replaces only what follows the last = or : of the word, and a
	# lone = or :, though a word of its own in COMP_WORDS, is kept.
	[[ $cur != [=:] ]] || cur=
	prefix=${words[-1]%"$cur"}
	COMPREPLY=()
	for w in "${candidates[@]}"; do
		[[ $w == "$prefix"* ]] && COMPREPLY+=("${w#"$prefix"}")
	done
	return 0
}

complete -o bashdefault -o default -F _tessera tessera
