/* store_script: the server-side half of the store, as Lua source. */
#ifndef TSR_STORE_SCRIPT_H
#define TSR_STORE_SCRIPT_H

extern const char store_script[];

#endif
