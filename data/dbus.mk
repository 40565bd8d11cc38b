# D-Bus: the API (installed for introspection users; the input of
# gdbus-codegen), the system-bus policy and activation file.
dbusinterfaces_DATA = data/org.bluegreen.Agent1.xml
dbuspolicy_DATA = data/org.bluegreen.Agent1.conf
dbussystemservice_DATA = data/org.bluegreen.Agent1.service
EXTRA_DIST += $(dbusinterfaces_DATA) $(dbuspolicy_DATA) $(dbussystemservice_DATA)
